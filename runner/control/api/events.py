"""``GET /v1/jobs/{id}/events``: a job's changes pushed to whoever waits for them (SSE).

The job's state changes in whichever API process a request reached (a data host claims and
finishes its jobs over HTTP, ``runner.control.api.hosting``; the control plane's reconciler
and other API workers share the database file). So the stream does not wait for an
in-process signal; it reads the job's state (one indexed row) every ``POLL_S`` and pushes the
job the moment it differs, which reaches a waiting client within ``POLL_S`` of the commit
whichever process made it. The client holds one connection and is told; the server's cost is
a point read per waiting client per ``POLL_S``.

Events (names in ``runner.wire``):

- ``job``: the job as the reader may see it (``jobs.queries.as_seen_by``: no outcome before
  release where the owner reviews outputs), first at once, then on every state change;
- ``log`` (with ``?logs=true``): the next piece of the running job's output from the data
  host's live log (``runner.livelog``), only for a reader ``jobs.access.can_read_logs``
  allows, asked again at every state change (a release opens it to the researcher). A data
  host publishes a live log only on a dataset whose researcher may read logs at any time
  (``jobs.access.live_log``); on any other, nothing of the log leaves the host while the job
  runs, and its reader gets the kept log when the job ended;
- ``logs-hidden``: the reader may not read the log (yet), and why; with ``"pending": true``
  the reader may read it, but it is still on the job's data host: ``GET .../logs?offset=NEXT``
  asks the host for it (``runner.control.api.results``);
- ``end``: the job ended; the stream closes. A job that ends with no complete live log (its
  dataset has none, its container never started, or its worker restarted) sends its kept log
  as one last ``log`` if the control plane has it, else a pending ``logs-hidden``: the end is
  never held up by an upload from the host.

A comment line every ``PING_S`` keeps proxies from closing an idle stream, and lets the client
tell a quiet job from a dead connection. The caller's token is checked again every
``RECHECK_S``: a token revoked or rotated away (``jobs.people``) closes the stream, and the
client's next request hears why (401).
"""

from __future__ import annotations

import codecs
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query
from sse_starlette import EventSourceResponse, ServerSentEvent

from jobs.access import live_log
from jobs.errors import NotAllowed, Unauthenticated
from jobs.models import Job, User
from jobs.states import JobState
from runner.control.api.deps import Actor, ApiState, State, Token
from runner.control.api.errors import errors
from runner.control.api.results import not_live
from runner.control.api.views import job_view
from runner.wire import EVENT_END, EVENT_JOB, EVENT_LOG, EVENT_LOGS_HIDDEN

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/jobs")

POLL_S = 0.02
PING_S = 15.0
RECHECK_S = 1.0
ENDED = frozenset(
    {JobState.SUCCEEDED, JobState.RELEASED, JobState.FAILED, JobState.REJECTED, JobState.CANCELLED}
)


def _event(name: str, data: Any) -> ServerSentEvent:
    return ServerSentEvent(data=json.dumps(data, separators=(",", ":")), event=name)


class _LogReader:
    """The reader's position in the live log, and the decoder that keeps UTF-8 whole."""

    def __init__(self, state: ApiState, job_id: str, offset: int, live: bool) -> None:
        self.state = state
        self.job_id = job_id
        self.offset = offset
        self.live = live  # whether its data host publishes it (``jobs.access.live_log``)
        self.seen_live = False
        self.live_done = False
        self.broken = False
        self._decode = codecs.getincrementaldecoder("utf-8")(errors="replace").decode

    async def next(self) -> ServerSentEvent | None:
        if self.broken or not self.live:
            return None
        try:
            got = await anyio.to_thread.run_sync(self.state.live.read, self.job_id, self.offset)
        except Exception as exc:  # Redis down: the state still streams
            self.broken = True
            log.warning("job %s: live log unreadable: %s", self.job_id, exc)
            return _event(EVENT_LOGS_HIDDEN, {"reason": f"the live log is unavailable ({exc})"})
        self.seen_live = self.seen_live or got.exists
        self.live_done = got.done
        if not got.data:
            return None
        self.offset = got.next_offset
        return _event(EVENT_LOG, {"text": self._decode(got.data), "next": self.offset})

    async def kept(self, job: Job) -> ServerSentEvent | None:
        """What the live log did not show of an ended job's kept log: all of it when the
        output never was live (its dataset has no live logs, its container never started, its
        worker restarted), the rest when the live log stopped before the end (Redis broke).

        Only if it is here: a kept log stays on its data host until someone asks for it, and
        the stream does not wait for an upload (its ``end`` would). A log still there is a
        ``logs-hidden`` with ``pending``: the reader may read it, from ``next``, by asking
        (``GET .../logs?offset=``, which fetches it from the host)."""
        outcome = job.outcome
        if (self.seen_live and self.live_done) or outcome is None or outcome.log_digest is None:
            return None
        digest = outcome.log_digest
        artifacts = self.state.ctx.artifacts

        def read() -> bytes | None:
            if not artifacts.has(digest):
                return None
            with artifacts.open(digest) as handle:
                return handle.read()

        data = await anyio.to_thread.run_sync(read)
        if data is None:
            reason = f"job {job.id}'s log is on its data host; `c2d logs {job.id}` asks for it"
            return _event(
                EVENT_LOGS_HIDDEN, {"reason": reason, "pending": True, "next": self.offset}
            )
        data = data[self.offset :]
        if not data:
            return None
        self.offset += len(data)
        return _event(EVENT_LOG, {"text": data.decode("utf-8", "replace"), "next": self.offset})


def _may_read_logs(state: ApiState, actor: User, job_id: str) -> str | None:
    """None if ``actor`` may read the job's log now, else why not."""
    try:
        state.ctx.service.authorize_logs(actor, job_id)
    except NotAllowed as exc:
        return str(exc)
    return None


async def _stream(
    state: ApiState, actor: User, job: Job, logs: bool, offset: int, token: str | None
) -> AsyncIterator[ServerSentEvent]:
    service = state.ctx.service
    recheck = time.monotonic() + RECHECK_S
    job_id = job.id
    live = logs and live_log(await anyio.to_thread.run_sync(service.dataset_of, job))
    reader = _LogReader(state, job_id, offset, live) if logs else None
    hidden: str | None = None
    told_not_live = False
    last: JobState | None = None
    while True:
        if time.monotonic() >= recheck:
            recheck = time.monotonic() + RECHECK_S
            try:
                await anyio.to_thread.run_sync(service.authenticate, token)
            except Unauthenticated:
                log.info("job %s: events stream of %s closed: its token ended", job_id, actor.name)
                return
        current = await anyio.to_thread.run_sync(service.store.job_state, job_id)
        if current is not last:
            job = await anyio.to_thread.run_sync(service.get_job, actor, job_id)
            last = job.state
            yield _event(EVENT_JOB, job_view(job))
            if reader is not None:
                was_hidden = hidden
                hidden = await anyio.to_thread.run_sync(_may_read_logs, state, actor, job_id)
                if hidden is not None and hidden != was_hidden:
                    yield _event(EVENT_LOGS_HIDDEN, {"reason": hidden})
                elif hidden is None and not live and not told_not_live and last not in ENDED:
                    told_not_live = True  # it may read the log, which comes at the end
                    yield _event(EVENT_LOGS_HIDDEN, {"reason": not_live(job)})
        if reader is not None and hidden is None:
            piece = await reader.next()
            if piece is not None:
                yield piece
        if last in ENDED:
            if reader is not None and hidden is None:
                piece = await reader.kept(await anyio.to_thread.run_sync(service.load_job, job_id))
                if piece is not None:
                    yield piece
            yield _event(EVENT_END, {"state": last.value if last else None})
            return
        await anyio.sleep(POLL_S)


@router.get("/{job_id}/events", response_class=EventSourceResponse, responses=errors(401, 404, 422))
async def events(
    job_id: str,
    actor: Actor,
    state: State,
    token: Token,
    logs: Annotated[
        bool, Query(description="Also stream the job's log, if you may read it.")
    ] = False,
    offset: Annotated[int, Query(ge=0, description="Byte of the log to start from.")] = 0,
) -> EventSourceResponse:
    """Server-sent events of one job: ``job`` at once and on every change, ``log`` pieces
    with ``?logs=true``, ``end`` when it ended. 404 for a job the caller may not see."""
    job = await anyio.to_thread.run_sync(state.ctx.service.get_job, actor, job_id)  # 404 first
    return EventSourceResponse(
        _stream(state, actor, job, logs, offset, token),
        ping=PING_S,
        send_timeout=30.0,  # a reader that stops reading is dropped, not waited for
        headers={"Cache-Control": "no-store"},
    )
