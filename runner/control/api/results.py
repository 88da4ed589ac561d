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
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse

from jobs.errors import Conflict, NotFound
from jobs.models import Job
from jobs.states import JobState
from ledger.kinds import ErrorKind
from runner.control.api.deps import Actor, ApiState, State
from runner.control.api.views import outputs_view
from runner.control.previews import gather, sources
from runner.errors import RunnerError
from runner.wire import LOG_TRUNCATED_HEADER, SHA256_HEADER

router = APIRouter(prefix="/v1/jobs")


LOG_WAIT_S = 20.0
"""How long a request for a log waits for its data host to upload it."""

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
    here = state.ctx.artifacts.has(outcome.log_digest)
    if not here and not _wait_for(state, job, "log", [outcome.log_digest]):
        raise _not_yet(job.id, "log")
    with state.ctx.artifacts.open(outcome.log_digest) as handle:
        text = handle.read().decode("utf-8", errors="replace")
    truncated = "1" if outcome.log_truncated else "0"
    return PlainTextResponse(text, headers={LOG_TRUNCATED_HEADER: truncated})


@router.get("/{job_id}/artifacts")
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


@router.get("/{job_id}/previews")
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
    if not state.ctx.artifacts.has(found.sha256):
        state.ask_host(job, "outputs")
        raise _not_yet(job.id, "outputs")
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
