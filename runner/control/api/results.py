"""Routes about what a job left: its log, its released artifacts and its receipt.

Nothing is downloadable before release (``Service.authorize_download`` answers 409); logs
follow the dataset's policy (``Service.authorize_logs``). Artifacts stream from the
content-addressed store with their digest in ``X-C2D-SHA256`` and ``Range`` support, so a
client can resume and check every byte.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse

from jobs.errors import Conflict, NotFound
from jobs.states import JobState
from runner.control.api.deps import Actor, State
from runner.control.api.views import outputs_view
from runner.control.previews import preview
from runner.wire import LOG_TRUNCATED_HEADER, SHA256_HEADER

router = APIRouter(prefix="/v1/jobs")


@router.get("/{job_id}/logs", response_class=PlainTextResponse)
def logs(job_id: str, actor: Actor, state: State) -> PlainTextResponse:
    """The job's captured stdout and stderr (capped); ``X-C2D-Log-Truncated`` says if cut."""
    job = state.ctx.service.authorize_logs(actor, job_id)
    outcome = job.outcome
    if outcome is None or outcome.log_digest is None:
        if job.state in (JobState.PENDING, JobState.APPROVED, JobState.RUNNING):
            raise Conflict(
                f"job {job_id} is {job.state.value}; its log is kept when it finishes "
                f"(`c2d status {job_id}`)"
            )
        return PlainTextResponse("", headers={LOG_TRUNCATED_HEADER: "0"})
    with state.ctx.artifacts.open(outcome.log_digest) as handle:
        text = handle.read().decode("utf-8", errors="replace")
    truncated = "1" if outcome.log_truncated else "0"
    return PlainTextResponse(text, headers={LOG_TRUNCATED_HEADER: truncated})


@router.get("/{job_id}/artifacts")
def artifacts(job_id: str, actor: Actor, state: State) -> list[dict[str, Any]]:
    """The released job's outputs (``metrics.json`` among them)."""
    return outputs_view(state.ctx.service.authorize_download(actor, job_id).outcome)


@router.get("/{job_id}/previews")
def previews(job_id: str, actor: Actor, state: State) -> list[dict[str, Any]]:
    """Each output's type and, for text, its first rows or bytes (``runner.control.previews``):
    for the dataset's owner before release, for the researcher after."""
    job = state.ctx.service.authorize_outputs(actor, job_id)
    outputs = job.outcome.outputs if job.outcome else []
    return [preview(state.ctx.artifacts, output).as_dict() for output in outputs]


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
