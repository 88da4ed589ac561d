"""Own-image preparations a submission waits for: the control plane's side.

A submission that brings its own image opens a ``Preparation`` and waits while the job's data
host builds or loads the image (``runner.control.api.preparing`` has the routes and the story).
It lives in this API process only, for as long as its submission waits.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from jobs.errors import NotFound
from jobs.images import ImageRecord
from runner.errors import ApiError, ServiceUnavailable


@dataclass
class Preparation:
    """What a data host needs to make a job's own image, and, once it answered, its answer."""

    id: str
    host: str
    bundle_digest: str
    dockerfile: str | None
    archive_digest: str | None
    answered: threading.Event = field(default_factory=threading.Event)
    record: ImageRecord | None = None
    error: tuple[str, str] | None = None

    def inputs(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "bundle_digest": self.bundle_digest,
            "dockerfile": self.dockerfile,
            "archive_digest": self.archive_digest,
        }


class Preparations:
    """The preparations this API process waits for."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, Preparation] = {}

    def open(
        self, host: str, bundle_digest: str, dockerfile: str | None, archive_digest: str | None
    ) -> Preparation:
        prep = Preparation(
            id="prep-" + secrets.token_hex(12),
            host=host,
            bundle_digest=bundle_digest,
            dockerfile=dockerfile,
            archive_digest=archive_digest,
        )
        with self._lock:
            self._open[prep.id] = prep
        return prep

    def of(self, host: str, prep_id: str) -> Preparation:
        """Preparation ``prep_id`` if it is ``host``'s; ``NotFound`` otherwise."""
        with self._lock:
            prep = self._open.get(prep_id)
        if prep is None or prep.host != host:
            raise NotFound(
                f"no image preparation {prep_id!r} waits for data host {host}; its submission "
                "has ended"
            )
        return prep

    def wait(self, prep: Preparation, timeout_s: float) -> ImageRecord:
        """The record the host answered; its error re-raised; ``ServiceUnavailable`` if it did
        not answer within ``timeout_s``. The preparation is closed either way."""
        try:
            deadline = time.monotonic() + timeout_s
            if not prep.answered.wait(max(0.0, deadline - time.monotonic())):
                raise ServiceUnavailable(
                    f"data host {prep.host} did not make the job's image within "
                    f"{timeout_s:.0f} s; check that it runs (`c2d hosts`) and submit again"
                )
            if prep.error is not None:
                kind, message = prep.error
                raise ApiError(kind, f"data host {prep.host}: {message}")
            assert prep.record is not None
            return prep.record
        finally:
            with self._lock:
                self._open.pop(prep.id, None)
