"""Routes about what a job left: its log, its released artifacts and its receipt.

Nothing is downloadable before release (``Service.authorize_download`` answers 409); logs
follow the dataset's policy (``Service.authorize_logs``), live while the job runs. Artifacts
stream from the content-addressed store with their digest in ``X-C2D-SHA256`` and ``Range``
support, so a client can resume and check every byte.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse

from jobs.errors import NotFound
from jobs.states import JobState
from runner.control.api.deps import Actor, ApiState, State
from runner.control.api.views import outputs_view
from runner.errors import ServiceUnavailable
from runner.wire import LOG_LIVE_HEADER, LOG_NEXT_HEADER, LOG_TRUNCATED_HEADER, SHA256_HEADER

router = APIRouter(prefix="/v1/jobs")


@router.get("/{job_id}/logs", response_class=PlainTextResponse)
def logs(
    job_id: str,
    actor: Actor,
    state: State,
    offset: Annotated[int, Query(ge=0, description="Live log: the byte to start from.")] = 0,
) -> PlainTextResponse:
    """The job's captured stdout and stderr (capped); ``X-C2D-Log-Truncated`` says if cut.

    Before the job has ended this is its live log so far, from byte ``offset``
    (``X-C2D-Log-Live: 1``, and ``X-C2D-Log-Next`` the offset to ask next), as the data host
    wrote it to Redis (``runner.livelog``); the same readers, the same cap. Once it ended,
    the kept log from byte ``offset`` (the rest, for a follower of the live one)."""
    job = state.ctx.service.authorize_logs(actor, job_id)
    outcome = job.outcome
    if outcome is None or outcome.log_digest is None:
        if job.state in (JobState.PENDING, JobState.APPROVED, JobState.RUNNING):
            return _live(state, job_id, offset)
        return PlainTextResponse("", headers={LOG_TRUNCATED_HEADER: "0"})
    with state.ctx.artifacts.open(outcome.log_digest) as handle:
        data = handle.read()
    truncated = "1" if outcome.log_truncated else "0"
    # A follower that read the live log up to `offset` asks for the rest of the kept one.
    text = data[offset:].decode("utf-8", errors="replace")
    return PlainTextResponse(
        text, headers={LOG_TRUNCATED_HEADER: truncated, LOG_NEXT_HEADER: str(len(data))}
    )


def _live(state: ApiState, job_id: str, offset: int) -> PlainTextResponse:
    try:
        got = state.live.read(job_id, offset)
    except Exception as exc:
        raise ServiceUnavailable(
            f"the live log of job {job_id} cannot be read now ({exc}); its log is kept when it ends"
        ) from exc
    return PlainTextResponse(
        got.data.decode("utf-8", errors="replace"),
        headers={
            LOG_TRUNCATED_HEADER: "0",
            LOG_LIVE_HEADER: "1",
            LOG_NEXT_HEADER: str(got.next_offset),
        },
    )


@router.get("/{job_id}/artifacts")
def artifacts(job_id: str, actor: Actor, state: State) -> list[dict[str, Any]]:
    """The released job's outputs (``metrics.json`` among them)."""
    return outputs_view(state.ctx.service.authorize_download(actor, job_id).outcome)


class BlobResponse(FileResponse):
    """A stored blob sent 1 MiB per read: starlette's 64 KiB reads, each handed to a worker
    thread, held a 1 GiB download to a fifth of the loopback's rate (bench/fetch_bench.py)."""

    chunk_size = 1 << 20


@router.get("/{job_id}/artifacts/{name:path}", response_class=BlobResponse)
def artifact(job_id: str, name: str, actor: Actor, state: State) -> BlobResponse:
    """One released output's bytes; ``Range: bytes=a-b`` gives 206 with that slice."""
    job = state.ctx.service.authorize_download(actor, job_id)
    outputs = job.outcome.outputs if job.outcome else []
    found = next((o for o in outputs if o.name == name), None)
    if found is None:
        raise NotFound(
            f"job {job_id} has no artifact {name!r}; `c2d fetch {job_id}` lists and gets them all"
        )
    return BlobResponse(
        state.ctx.artifacts.path(found.sha256),
        media_type="application/octet-stream",
        headers={SHA256_HEADER: found.sha256.removeprefix("sha256:")},
    )


@router.get("/{job_id}/receipt")
def receipt(job_id: str, actor: Actor, state: State) -> JSONResponse:
    """The job's ledger entries with inclusion proofs and a signed checkpoint."""
    job = state.ctx.service.get_job(actor, job_id)
    return JSONResponse(state.ctx.ledger.receipt(job.id))
