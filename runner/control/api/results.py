"""Routes about what a job left: its log, its released artifacts, previews and its receipt.

Nothing is downloadable before release (``Service.authorize_download`` answers 409); logs
follow the dataset's policy (``Service.authorize_logs``). Outputs and logs stay on the job's
data host until then: on release the host uploads the outputs (each checked against the
digests it signed), and a log is uploaded when someone who may read it asks. Until a file is
here its route answers 503 with ``Retry-After`` and asks the host again; the artifact list
says which are ``available``. Artifacts stream from the content-addressed store with their
digest in ``X-C2D-SHA256`` and ``Range`` support, so a client can resume and check every byte.
Previews (``runner.control.previews``) let the dataset's owner see what the outputs hold before
she releases them: they read the copies the host uploads for review, kept apart from released
artifacts, and only those until release.

While a job runs on a dataset whose researcher may read logs at any time
(``jobs.access.live_log``), its log is the live one its data host writes to Redis as the
container writes it (``runner.livelog``); on any other dataset nothing of a running job's log
leaves its host, and the route answers 409 until the job ended.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse

from jobs.access import live_log
from jobs.errors import Conflict, NotFound
from jobs.models import Job
from jobs.states import JobState
from ledger.kinds import ErrorKind
from runner.control.api import links
from runner.control.api.deps import Actor, ApiState, State
from runner.control.api.errors import errors
from runner.control.api.views import outputs_view
from runner.control.previews import gather, sources
from runner.errors import RunnerError, ServiceUnavailable
from runner.wire import LOG_LIVE_HEADER, LOG_NEXT_HEADER, LOG_TRUNCATED_HEADER, SHA256_HEADER

router = APIRouter(prefix="/v1/jobs")


LOG_WAIT_S = 20.0
"""How long a request for a log waits for its data host to upload it."""
NOT_ENDED = (JobState.PENDING, JobState.APPROVED, JobState.RUNNING)

PREVIEW_WAIT_S = 5.0
"""How long a request for previews waits for the data host to upload the outputs."""


class NotYetHere(RunnerError):
    """A file still on the job's data host: 503 with ``Retry-After``."""

    kind = ErrorKind.UNAVAILABLE


def _not_yet(job_id: str, what: str) -> NotYetHere:
    return NotYetHere(
        f"job {job_id}'s {what} are still on its data host, which has been asked to upload "
        "them; try again in a few seconds (if this lasts, check the host with `c2d hosts`)"
        if what == "outputs"
        else f"job {job_id}'s {what} is still on its data host, which has been asked for it; "
        "try again in a few seconds (if this lasts, check the host with `c2d hosts`)"
    )


def _wait_for(state: ApiState, job: Job, what: str, digests: list[str]) -> bool:
    """Ask the job's host to upload ``what`` and wait up to ``LOG_WAIT_S`` for ``digests``."""
    state.ask_host(job, what)
    deadline = time.monotonic() + LOG_WAIT_S
    while time.monotonic() < deadline:
        if all(state.ctx.artifacts.has(d) for d in digests):
            return True
        time.sleep(0.1)
    return False


def kept_log(state: ApiState, job: Job) -> bytes:
    """An ended job's kept log, asked from its data host (and waited for) when not here yet;
    ``NotYetHere`` when the host did not upload it in ``LOG_WAIT_S``; empty for a job without
    one. The caller checked that its reader may read it (``Service.authorize_logs``)."""
    digest = job.outcome.log_digest if job.outcome is not None else None
    if digest is None:
        return b""
    if not state.ctx.artifacts.has(digest) and not _wait_for(state, job, "log", [digest]):
        raise _not_yet(job.id, "log")
    with state.ctx.artifacts.open(digest) as handle:
        return handle.read()


@router.get(
    "/{job_id}/logs",
    response_class=PlainTextResponse,
    responses=errors(401, 403, 404, 409, 422, 503),
)
def logs(
    job_id: str,
    actor: Actor,
    state: State,
    offset: Annotated[int, Query(ge=0, description="Live log: the byte to start from.")] = 0,
) -> PlainTextResponse:
    """The job's captured stdout and stderr (capped); ``X-C2D-Log-Truncated`` says if cut.

    Before the job has ended, on a dataset whose researcher may read logs at any time, this
    is its live log so far, from byte ``offset`` (``X-C2D-Log-Live: 1``, and
    ``X-C2D-Log-Next`` the offset to ask next), as the data host wrote it to Redis
    (``runner.livelog``); the same readers, the same cap. On any other dataset a job that has
    not ended answers 409: its log stays on its data host until then. Once it ended, the kept
    log from byte ``offset`` (the rest, for a follower of the live one), which the data host
    uploads when first asked (503 with ``Retry-After`` if it does not in time)."""
    job = state.ctx.service.authorize_logs(actor, job_id)
    outcome = job.outcome
    if outcome is None or outcome.log_digest is None:
        if job.state in NOT_ENDED:
            return _live(state, job, offset)
        return PlainTextResponse("", headers={LOG_TRUNCATED_HEADER: "0"})
    data = kept_log(state, job)
    truncated = "1" if outcome.log_truncated else "0"
    # A follower that read the live log up to `offset` asks for the rest of the kept one.
    text = data[offset:].decode("utf-8", errors="replace")
    return PlainTextResponse(
        text, headers={LOG_TRUNCATED_HEADER: truncated, LOG_NEXT_HEADER: str(len(data))}
    )


def not_live(job: Job) -> str:
    """Why a job's log cannot be read before it ended, on a dataset without live logs."""
    return (
        f"job {job.id} is {job.state.value}; its dataset's policy keeps logs to its owner "
        "(logs_visible: owner), so nothing of a running job's log leaves its data host: the "
        f"log can be read once the job ended (`c2d status {job.id}`)"
    )


def _live(state: ApiState, job: Job, offset: int) -> PlainTextResponse:
    if not live_log(state.ctx.service.dataset_of(job)):
        raise Conflict(not_live(job))
    try:
        got = state.live.read(job.id, offset)
    except Exception as exc:
        raise ServiceUnavailable(
            f"the live log of job {job.id} cannot be read now ({exc}); its log is kept when it ends"
        ) from exc
    return PlainTextResponse(
        got.data.decode("utf-8", errors="replace"),
        headers={
            LOG_TRUNCATED_HEADER: "0",
            LOG_LIVE_HEADER: "1",
            LOG_NEXT_HEADER: str(got.next_offset),
        },
    )


@router.get(
    "/{job_id}/artifacts",
    operation_id=links.LIST_ARTIFACTS,
    responses=links.linked(200, links.artifact_links()) | errors(401, 403, 404, 409, 422),
)
def artifacts(job_id: str, actor: Actor, state: State) -> list[dict[str, Any]]:
    """The released job's outputs (``metrics.json`` among them), each ``available`` once its
    data host uploaded it (the host is asked again while one is missing)."""
    job = state.ctx.service.authorize_download(actor, job_id)
    shown = outputs_view(job.outcome)
    outputs = job.outcome.outputs if job.outcome else []
    have = {o.sha256: state.ctx.artifacts.has(o.sha256) for o in outputs}
    for item in shown:
        item["available"] = have.get(item["sha256"], False)
    if not all(have.values()):
        state.ask_host(job, "outputs")
    return shown


@router.get("/{job_id}/previews", responses=errors(401, 403, 404, 409, 422, 503))
def previews(job_id: str, actor: Actor, state: State) -> list[dict[str, Any]]:
    """Each output's type and, for text, its first rows or bytes (``runner.control.previews``):
    for the dataset's owner before release, for the researcher after. Before release they are
    read from the copies the data host uploads for review, never from released artifacts;
    while one is still on the host, the host is asked for them and the answer is 503 with
    ``Retry-After``."""
    job = state.ctx.service.authorize_outputs(actor, job_id)
    stores, ask = sources(state.ctx, job)
    outputs = job.outcome.outputs if job.outcome else []

    def here() -> bool:
        return all(any(s.has(o.sha256) for s in stores) for o in outputs)

    if not here() and ask is not None:
        state.ask_host_soon(job, ask)
        deadline = time.monotonic() + PREVIEW_WAIT_S
        while not here() and time.monotonic() < deadline:
            time.sleep(0.1)
    found = gather(state.ctx, job)
    if found.missing:
        if found.ask is None:
            raise Conflict(
                f"job {job_id} is {job.state.value}: its outputs stayed on its data host and "
                "nothing of them is here to preview"
            )
        raise NotYetHere(
            f"job {job_id}'s outputs are still on its data host, which has been asked to "
            "upload them; try again in a few seconds (if this lasts, check the host "
            "with `c2d hosts`)"
        )
    return [p.as_dict() for p in found.previews]


class BlobResponse(FileResponse):
    """A stored blob sent 1 MiB per read: starlette's 64 KiB reads, each handed to a worker
    thread, held a 1 GiB download to a fifth of the loopback's rate (bench/fetch_bench.py)."""

    chunk_size = 1 << 20


@router.get(
    "/{job_id}/artifacts/{name:path}",
    operation_id=links.GET_ARTIFACT,
    response_class=BlobResponse,
    responses=errors(401, 403, 404, 409, 422, 503),
)
def artifact(job_id: str, name: str, actor: Actor, state: State) -> BlobResponse:
    """One released output's bytes; ``Range: bytes=a-b`` gives 206 with that slice."""
    job = state.ctx.service.authorize_download(actor, job_id)
    outputs = job.outcome.outputs if job.outcome else []
    found = next((o for o in outputs if o.name == name), None)
    if found is None:
        raise NotFound(
            f"job {job_id} has no artifact {name!r}; `c2d fetch {job_id}` lists and gets them all"
        )
    if not state.ctx.artifacts.has(found.sha256):
        state.ask_host(job, "outputs")
        raise _not_yet(job.id, "outputs")
    return BlobResponse(
        state.ctx.artifacts.path(found.sha256),
        media_type="application/octet-stream",
        headers={SHA256_HEADER: found.sha256.removeprefix("sha256:")},
    )


@router.get("/{job_id}/receipt", operation_id=links.GET_RECEIPT, responses=errors(401, 404, 422))
def receipt(job_id: str, actor: Actor, state: State) -> JSONResponse:
    """The job's ledger entries with inclusion proofs and a signed checkpoint."""
    job = state.ctx.service.get_job(actor, job_id)
    return JSONResponse(state.ctx.ledger.receipt(job.id))
