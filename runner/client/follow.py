"""Following a job to its end: pushed by the server, polled when the push breaks.

``follow(client, job_id, watcher)`` holds the job's event stream (``GET /v1/jobs/ID/events``):
the server pushes the job on every state change (and, with ``logs``, its live log), so the
caller learns of the end within the server's poll of its store (tens of milliseconds), not a
client's poll interval. When the stream breaks (a proxy cut it, the server restarted, a server
without the route), ``follow`` tells the watcher why and goes on by polling the job (and its
live log) every ``poll_s``, from where the stream left off.

On a dataset without live logs (``jobs.access.live_log``) a reader who may read the log is
told it comes once the job ended. The end is never held up for it: a kept log still on the
job's data host is *pending* (``Followed.log_pending``), and only a follower that asked for the
whole log (``rest``: `c2d logs -f`) then asks for it, which has the control plane fetch it from
the host.

Progress is the watcher's (``Watcher``): the CLI passes one that draws on stderr, a notebook one
that updates a line in the cell (``runner.client.progress``). The core never prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from runner.client.api import Client
from runner.errors import ApiError, ServiceUnavailable
from runner.wire import EVENT_END, EVENT_JOB, EVENT_LOG, EVENT_LOGS_HIDDEN

ENDED = frozenset({"succeeded", "released", "failed", "rejected", "cancelled"})
FAILURE = frozenset({"failed", "rejected", "cancelled"})
POLL_S = 1.0


class Watcher(Protocol):
    """What a follower is told; every method must return quickly."""

    def job(self, job: dict[str, Any]) -> None:
        """The job as the API shows it: first, then on every change of state."""

    def log(self, text: str) -> None:
        """The next piece of the job's log (with ``logs=True``), control characters and all:
        escaping is the shower's job."""

    def note(self, text: str) -> None:
        """Something about the following itself: the push broke and polling took over, the
        log is not the reader's to see."""


class Silent:
    """A watcher that is told and says nothing."""

    def job(self, job: dict[str, Any]) -> None:
        pass

    def log(self, text: str) -> None:
        pass

    def note(self, text: str) -> None:
        pass


@dataclass
class Followed:
    """How a follow went: the last view of the job, whether it ended, whether the push held."""

    job: dict[str, Any]
    pushed: bool = True
    broke: str | None = None
    log_offset: int = 0
    log_held: bool = False  # the log stays on the data host until the job ended
    log_pending: bool = False  # the job ended; its log (from log_offset) is on its data host
    notes: list[str] = field(default_factory=list)

    @property
    def ended(self) -> bool:
        return self.job["state"] in ENDED

    @property
    def failed(self) -> bool:
        return self.job["state"] in FAILURE


def follow(
    client: Client,
    job_id: str,
    watcher: Watcher | None = None,
    *,
    logs: bool = False,
    rest: bool = False,
    poll_s: float = POLL_S,
    timeout: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Followed:
    """Follow ``job_id`` until it ends (or ``timeout`` seconds pass); see the module docstring.
    With ``logs`` the watcher gets the log as it comes; with ``rest`` too, once the job ended,
    what of the kept log did not come (a log kept on the data host is asked for then).

    Raises what the API raises for the job itself (``ApiError`` not found, not allowed) and
    ``ServiceUnavailable`` when neither the stream nor a poll reaches the server.
    """
    watch = watcher or Silent()
    deadline = None if timeout is None else time.monotonic() + timeout
    state = Followed(job={"id": job_id, "state": "unknown"})
    try:
        for name, data in client.events(job_id, logs=logs):
            if name == EVENT_JOB:
                state.job = data
                watch.job(data)
            elif name == EVENT_LOG:
                state.log_offset = int(data.get("next", state.log_offset))
                watch.log(str(data.get("text", "")))
            elif name == EVENT_LOGS_HIDDEN and data.get("pending"):
                state.log_pending = True
                state.log_offset = int(data.get("next", state.log_offset))
                if not rest:
                    _note(state, watch, f"no log shown: {data.get('reason')}")
            elif name == EVENT_LOGS_HIDDEN:
                _note(state, watch, f"no log shown: {data.get('reason')}")
            elif name == EVENT_END:
                break
            if deadline is not None and time.monotonic() > deadline:
                return state
        else:
            state.broke = "the server closed the event stream before the job ended"
    except ServiceUnavailable as exc:
        state.broke = str(exc)
    except ApiError as exc:
        if exc.status not in (404, 405) or state.job["state"] != "unknown":
            raise
        # 404 before any event: no such job, or a server without the route. Ask plainly.
        state.job = client.job(job_id)
        state.broke = f"the server does not push job events ({exc})"
    if state.broke is None:  # the stream ended with the job
        if rest and state.log_pending:
            _poll_log(client, job_id, watch, state)
        return state
    state.pushed = False
    _note(state, watch, f"the event stream broke ({state.broke}); following by polling every "
          f"{poll_s:g} s")  # fmt: skip
    return _poll(client, job_id, watch, state, logs, rest, poll_s, deadline, sleep)


def _note(state: Followed, watch: Watcher, text: str) -> None:
    state.notes.append(text)
    watch.note(text)


def _poll(
    client: Client,
    job_id: str,
    watch: Watcher,
    state: Followed,
    logs: bool,
    rest: bool,
    poll_s: float,
    deadline: float | None,
    sleep: Callable[[float], None],
) -> Followed:
    seen = state.job.get("state")
    log_open = logs
    while True:
        job = client.job(job_id)
        if job["state"] != seen:
            seen = job["state"]
            state.job = job
            watch.job(job)
        state.job = job
        ended = job["state"] in ENDED
        if log_open and ended and not rest:
            # The kept log may be on the data host: asking for it would hold up the end.
            state.log_pending = True
        elif log_open:
            log_open = _poll_log(client, job_id, watch, state)
        if ended or (deadline is not None and time.monotonic() > deadline):
            return state
        sleep(poll_s)


def _poll_log(client: Client, job_id: str, watch: Watcher, state: Followed) -> bool:
    """One poll of the log; False once it is no use asking again."""
    try:
        piece = client.log_piece(job_id, state.log_offset)
    except ApiError as exc:
        if exc.status == 403:
            _note(state, watch, f"no log shown: {exc}")
            return False
        if exc.status == 409:  # a dataset without live logs: the log comes once it ended
            if not state.log_held:
                state.log_held = True
                _note(state, watch, f"no log shown yet: {exc}")
            return True
        if exc.status == 503 and state.job.get("state") in ENDED:
            _note(state, watch, f"no log shown: {exc}")  # still on its data host
            return False
        raise
    if not piece.live:
        # The job ended: the kept log from where the live pieces stopped.
        if piece.text:
            watch.log(piece.text)
        state.log_offset = piece.next
        state.log_pending = False
        return False
    if piece.text:
        watch.log(piece.text)
    state.log_offset = piece.next
    return True
