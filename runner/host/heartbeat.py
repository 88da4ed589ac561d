"""A worker's heartbeat: a thread that keeps renewing its lease on one running job.

The lease is what tells the reconciler that a live worker still watches the job. When the
control plane refuses a renewal with ``LeaseLost`` the job was cancelled, finished by someone
else or claimed again after the lease ran out; the heartbeat records why and stops, and the worker's
pipeline, which polls ``lost``, acts on it. A control plane that is briefly busy or down is
not a lost lease: the heartbeat logs it and tries again at the next beat.
"""

from __future__ import annotations

import logging
import threading

from jobs.errors import LeaseLost
from runner.host.port import ControlPort

log = logging.getLogger(__name__)


def beat_interval(lease_s: float, heartbeat_s: float = 0.0) -> float:
    """Seconds between renewals: ``heartbeat_s`` if set, else a third of the lease, at most 10."""
    if heartbeat_s > 0:
        return min(heartbeat_s, lease_s / 2)
    return min(lease_s / 3, 10.0)


class Heartbeat:
    """Renews ``job_id``'s lease every ``interval`` seconds until stopped or lost.

    Use as a context manager around everything the worker does while it holds the job.
    """

    def __init__(
        self,
        control: ControlPort,
        job_id: str,
        worker: str,
        fence: int,
        lease_s: float,
        interval: float,
    ) -> None:
        self._control = control
        self._job_id = job_id
        self._worker = worker
        self._fence = fence
        self._lease_s = lease_s
        self._interval = interval
        self._stop = threading.Event()
        self._lost: LeaseLost | None = None
        self._thread = threading.Thread(
            target=self._run, name=f"c2d-heartbeat-{job_id}", daemon=True
        )

    @property
    def lost(self) -> LeaseLost | None:
        """Why the lease was lost, or ``None`` while the worker still holds the job."""
        return self._lost

    def beat(self) -> None:
        """Renew the lease once, now; records a ``LeaseLost`` instead of raising it."""
        if self._lost is not None:
            return
        try:
            self._control.heartbeat(self._job_id, self._worker, self._fence, self._lease_s)
        except LeaseLost as exc:
            log.info("job %s: lease lost: %s", self._job_id, exc)
            self._lost = exc
            self._stop.set()
        except Exception as exc:  # a busy or briefly broken database: try again next beat
            log.warning("job %s: lease not renewed this time: %s", self._job_id, exc)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.beat()

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
