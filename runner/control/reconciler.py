"""The control plane's reconciler: makes the store and the queues agree, for every data host.

It runs every ``Settings.reconcile_s`` in the API process (a thread) and is safe with several
running at once: every action goes through a compare-and-set in the store, or is marked in
Redis (one send per job per grace period). One pass (``Reconciler.run_once``):

1. **Lost messages**: an approved job that is not on its host's queue and was approved (or
   last sent) more than ``Settings.redispatch_s`` ago is sent again. A duplicate is harmless:
   the second claim fails its compare-and-set.
2. **Expired leases**: a running job whose host stopped renewing its lease is sent back to its
   host, which claims it again and adopts its container, or finishes it from its outbox, or
   fails it when the container is gone (``runner.host.pipeline``): only the host knows what is
   on it. A job already claimed ``MAX_ATTEMPTS`` times, or whose lease ran out more than
   ``Settings.host_lost_s`` ago (its host does not come back), fails here with a reason
   (exactly one ``job.finished``: the fence guards it).
3. **Lost dry runs** (when ``Settings.dryrun`` is on): a pending job with no dry run kept,
   whose dry-run lease ran out or that no host leased within ``Settings.redispatch_s`` of its
   submission, and with no dry-run message on the queue, gets its dry-run message again.

What a host has on its own engine (containers, images, folders) is its own reconciler's
(``runner.host.reconciler``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from jobs.errors import Conflict, JobsError
from jobs.models import Job
from runner.context import Context
from runner.errors import RunnerError
from runner.jsonlog import log_fields
from runner.transport import TASK_DRYRUN, TASK_RUN

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
"""Claims of one job after which an expired lease fails it instead of sending it back."""


class Sender(Protocol):
    """What the reconciler needs of ``runner.transport.Dispatcher``."""

    def send(self, job_id: str, host: str, ttl: float = 0.0, *, task: str = TASK_RUN) -> bool: ...

    def queued(self, host: str) -> set[str]: ...


@dataclass
class Pass:
    """What one pass did, by job id (for logs and tests)."""

    sent: list[str] = field(default_factory=list)
    dryruns_sent: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


class Reconciler:
    """The control plane's reconciler; ``run_once`` is one pass, ``start`` runs it in a thread."""

    def __init__(
        self, ctx: Context, sender: Sender, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.ctx = ctx
        self.sender = sender
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _host(self, job: Job) -> str:
        return self.ctx.service.dataset_of(job).policy.host

    def run_once(self) -> Pass:
        """One pass of the three steps; an error in one job is logged and the pass goes on."""
        done = Pass()
        self._resend_lost(done)
        self._resolve_expired(done)
        if self.ctx.settings.dryrun:
            self._resend_lost_dryruns(done)
        return done

    def _by_host(self, jobs: list[Job]) -> dict[str, list[Job]]:
        found: dict[str, list[Job]] = {}
        for job in jobs:
            found.setdefault(self._host(job), []).append(job)
        return found

    def _resend_lost(self, done: Pass) -> None:
        grace = self.ctx.settings.redispatch_s
        now = self.clock()
        for host, waiting in self._by_host(self.ctx.service.dispatchable()).items():
            queued = self.sender.queued(host)
            for job in waiting:
                approved_at = job.approval.time if job.approval else job.updated
                if job.id in queued or now - approved_at < grace:
                    continue
                if self.sender.send(job.id, host, ttl=grace):
                    log.info(
                        "job %s was approved but not queued; sent again",
                        job.id,
                        extra=log_fields(job_id=job.id, data_host=host, event="job.resent"),
                    )
                    done.sent.append(job.id)

    def _resend_lost_dryruns(self, done: Pass) -> None:
        grace = self.ctx.settings.redispatch_s
        for host, lost in self._by_host(self.ctx.service.lost_dryruns(grace)).items():
            queued = self.sender.queued(host)
            for job in lost:
                if f"dryrun-{job.id}" in queued:
                    continue
                if self.sender.send(job.id, host, ttl=grace, task=TASK_DRYRUN):
                    log.info(
                        "job %s: its dry run has no live host; sent again",
                        job.id,
                        extra=log_fields(job_id=job.id, data_host=host, event="dryrun.resent"),
                    )
                    done.dryruns_sent.append(job.id)

    def _resolve_expired(self, done: Pass) -> None:
        now = self.clock()
        for job in self.ctx.service.expired_leases(now):
            try:
                self._resolve(job, now, done)
            except (JobsError, RunnerError) as exc:
                log.warning("job %s: expired lease not resolved this pass: %s", job.id, exc)

    def _resolve(self, job: Job, now: float, done: Pass) -> None:
        host = self._host(job)
        expired_for = now - (job.lease_expires or now)
        if job.attempts < MAX_ATTEMPTS and expired_for < self.ctx.settings.host_lost_s:
            if self.sender.send(job.id, host, ttl=self.ctx.settings.redispatch_s):
                log.info(
                    "job %s: %s's lease ran out; sent back to adopt",
                    job.id,
                    host,
                    extra=log_fields(job_id=job.id, data_host=host, event="job.readopt"),
                )
                done.adopted.append(job.id)
            return
        if job.attempts >= MAX_ATTEMPTS:
            reason = (
                f"gave up after {job.attempts} attempts to run it; its workers kept being lost; "
                f"ask the operator of data host {host} to check its logs"
            )
        else:
            reason = (
                f"data host {host} has not renewed the job's lease for {expired_for:.0f} s; "
                "submit the job again when the host is back"
            )
        try:
            self.ctx.service.fail_expired(job.id, job.fence, reason)
        except Conflict as exc:  # another reconciler or the host got there first
            log.info("job %s: not failed here: %s", job.id, exc)
            return
        log.warning(
            "job %s failed: %s",
            job.id,
            reason,
            extra=log_fields(job_id=job.id, data_host=host, event="job.host_lost"),
        )
        done.failed.append(job.id)

    def loop(self) -> None:
        """Run passes every ``reconcile_s`` until ``stop``; never dies of one bad pass."""
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("reconciler pass failed; retrying next pass")
            self._stop.wait(self.ctx.settings.reconcile_s)

    def start(self) -> None:
        """Run ``loop`` in a daemon thread."""
        self._thread = threading.Thread(target=self.loop, name="c2d-reconciler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the loop to stop and wait for the current pass to end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
