"""What every route is handed: the API's state and the user behind the bearer token.

Tokens are looked up by their sha256 in the store and compared in constant time
(``Service.authenticate``); the API never sees a stored token. Who may do what is decided by
the service; routes only pass the user along.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from jobs.models import Job, User
from jobs.states import JobState
from runner.context import Context
from runner.control.preparations import Preparations
from runner.livelog import LiveLogs
from runner.transport import TASK_DRYRUN, TASK_PREPARE, TASK_UPLOAD, Dispatcher, key_prefix

log = logging.getLogger(__name__)

ASK_EVERY_S = 10.0
"""How often ``ask_host_soon`` asks a data host again for the same files of the same job."""

_bearer = HTTPBearer(auto_error=False, description="A token from `c2d init` or `c2d user add`.")


@dataclass
class ApiState:
    """The API process's context, its (lazily connected) dispatcher, and the own-image
    preparations its submissions wait for (``runner.control.api.preparing``)."""

    ctx: Context
    dispatcher: Dispatcher | None = None
    preparations: Preparations = field(default_factory=Preparations)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _live: LiveLogs | None = None
    _asked: dict[tuple[str, str], float] = field(default_factory=dict)

    @property
    def live(self) -> LiveLogs:
        """The live logs data hosts write to Redis (connected on first use)."""
        with self._lock:
            if self._live is None:
                settings = self.ctx.settings
                self._live = LiveLogs(settings.redis_url, key_prefix(settings))
            return self._live

    def sender(self) -> Dispatcher:
        with self._lock:
            if self.dispatcher is None:
                self.dispatcher = Dispatcher.for_settings(self.ctx.settings)
            return self.dispatcher

    def dispatch(self, job: Job) -> None:
        """Send an approved job to its data host's queue; best effort (see the reconciler)."""
        if job.state is not JobState.APPROVED:
            return
        try:
            host = self.ctx.service.dataset_of(job).policy.host
            self.sender().send(job.id, host, ttl=self.ctx.settings.redispatch_s)
        except Exception as exc:
            log.warning("job %s not dispatched now (the reconciler will): %s", job.id, exc)

    def dispatch_dryrun(self, job: Job) -> None:
        """Ask a pending job's data host to dry-run it on mock data; best effort (a lost
        request means review shows no dry run, never that the job is held)."""
        if job.state is not JobState.PENDING or not self.ctx.settings.dryrun:
            return
        try:
            host = self.ctx.service.dataset_of(job).policy.host
            self.sender().send(job.id, host, task=TASK_DRYRUN)
        except Exception as exc:
            log.warning("job %s: no dry run requested: %s", job.id, exc)

    def ask_host(self, job: Job, what: str) -> bool:
        """Ask the job's data host to upload ``what`` (``outputs``, ``log``, ``review``) of it;
        best effort (True if the request was queued)."""
        try:
            host = self.ctx.service.dataset_of(job).policy.host
            return self.sender().send(job.id, host, task=TASK_UPLOAD, args=(what,))
        except Exception as exc:
            log.warning("job %s: its data host was not asked for its %s: %s", job.id, what, exc)
            return False

    def ask_host_soon(self, job: Job, what: str, every_s: float = ASK_EVERY_S) -> bool:
        """``ask_host``, unless this process asked for the same in the last ``every_s`` seconds:
        a page that polls every few seconds, or a client retrying after a 503, must not queue
        an upload of the same (maybe large) files each time. True if asked now."""
        now = time.monotonic()
        key = (job.id, what)
        with self._lock:
            last = self._asked.get(key)
            if last is not None and now - last < every_s:
                return False
            if len(self._asked) > 1000:  # forget old asks; the map stays small
                self._asked = {k: t for k, t in self._asked.items() if now - t < every_s}
            self._asked[key] = now
        return self.ask_host(job, what)

    def prepare(self, prep_id: str, host: str) -> bool:
        """Ask ``host`` to make a submission's own image (``runner.control.api.preparing``)."""
        return self.sender().send(prep_id, host, task=TASK_PREPARE)

    def close(self) -> None:
        """Close the dispatcher and the context."""
        if self.dispatcher is not None:
            self.dispatcher.close()
        if self._live is not None:
            self._live.close()
        self.ctx.close()


def api_state(request: Request) -> ApiState:
    """The ``ApiState`` of the app serving ``request``."""
    state: ApiState = request.app.state.c2d
    return state


def current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    """The user holding the bearer token; ``Unauthenticated`` (401) for none or a wrong one."""
    token = credentials.credentials if credentials is not None else None
    return api_state(request).ctx.service.authenticate(token)


def bearer_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str | None:
    """The bearer token as sent, for a long answer (a stream) that checks it again as it goes:
    a token revoked or rotated away must not keep a stream open."""
    return credentials.credentials if credentials is not None else None


State = Annotated[ApiState, Depends(api_state)]
Actor = Annotated[User, Depends(current_user)]
Token = Annotated[str | None, Depends(bearer_token)]
