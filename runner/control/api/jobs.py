"""Routes about jobs: read them, review them, and the data owner's decisions.

Each handler translates one request into one ``Service`` call; the service decides who may.
Approve, reject, trust and release take an optional ``signed`` envelope: the person's
signature over the statement of that very action (``jobs.signed_actions``), which the service
checks (422: the statement differs; 403: not a valid key of theirs) and records in the entry.
An approval (or a policy approval at submit) is followed by a best-effort dispatch to the
dataset's data host, after the answer is sent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict

from jobs.errors import NotFound
from jobs.fields import Note, Reason
from jobs.models import TrustedCode
from jobs.signed_actions import SignedEnvelope
from jobs.states import JobState
from runner.control.api import links
from runner.control.api.deps import Actor, ApiState, State
from runner.control.api.errors import errors
from runner.control.api.own_image import review_view
from runner.control.api.reviewing import bundle_path, review_document
from runner.control.api.views import job_view
from runner.wire import SHA256_HEADER

router = APIRouter(prefix="/v1/jobs")

# Strict: a request holds what the document says (`true`, not `1`; `5`, not `"5"`), as
# schemathesis checks; lax coercion would accept bodies the document calls invalid.
_REQUEST = ConfigDict(frozen=True, extra="forbid", strict=True)


class ApproveBody(BaseModel):
    """``POST /v1/jobs/{id}/approve``; the note is capped (``jobs.fields.Note``)."""

    model_config = _REQUEST
    note: Note = ""
    signed: SignedEnvelope | None = None


class RejectBody(BaseModel):
    """``POST /v1/jobs/{id}/reject``."""

    model_config = _REQUEST
    reason: Reason
    signed: SignedEnvelope | None = None


class RefuseBody(BaseModel):
    """``POST /v1/jobs/{id}/refuse``."""

    model_config = _REQUEST
    reason: Reason


class ReleaseBody(BaseModel):
    """``POST /v1/jobs/{id}/release``: ``despite_checks`` says the releaser saw the failed
    output checks and releases anyway."""

    model_config = _REQUEST
    despite_checks: bool = False
    signed: SignedEnvelope | None = None


class CancelBody(BaseModel):
    """``POST /v1/jobs/{id}/cancel``."""

    model_config = _REQUEST
    reason: Note = ""


class TrustBody(BaseModel):
    """``POST /v1/jobs/{id}/trust``: ``any_params`` trusts the code whatever the params."""

    model_config = _REQUEST
    any_params: bool = False
    signed: SignedEnvelope | None = None


def trust_view(trusted: TrustedCode) -> dict[str, Any]:
    """What was trusted, and for whom (``params_digest`` null: any params)."""
    return {
        "dataset": trusted.dataset,
        "code_digest": trusted.code_digest,
        "researcher": trusted.researcher,
        "params_digest": trusted.params_digest,
        "any_params": trusted.any_params,
        "trusted_by": trusted.trusted_by,
        "job_id": trusted.job_id,
    }


@router.get(
    "", responses=links.linked(200, links.job_links("$response.body#/0/id")) | errors(401, 422)
)
def list_jobs(
    actor: Actor,
    state: State,
    job_state: Annotated[
        JobState | None, Query(alias="state", description="Only jobs in it.")
    ] = None,
    dataset: Annotated[str | None, Query(description="Only jobs on this dataset.")] = None,
    limit: Annotated[int | None, Query(ge=1, le=10_000, description="The newest N.")] = None,
) -> list[dict[str, Any]]:
    """The jobs the caller may see, oldest first; ``?state=pending`` and ``?dataset=NAME``
    filter, ``?limit=N`` keeps the newest N."""
    found = state.ctx.service.list_jobs(actor, job_state, dataset=dataset, limit=limit)
    return [job_view(j) for j in found]


@router.get(
    "/{job_id}",
    operation_id=links.GET_JOB,
    responses=links.linked(200, links.job_links("$response.body#/id")) | errors(401, 404, 422),
)
def get_job(job_id: str, actor: Actor, state: State) -> dict[str, Any]:
    """One job (404 for jobs the caller may not see)."""
    return job_view(state.ctx.service.get_job(actor, job_id))


def _bundle_path(state: ApiState, digest: str) -> Path:
    return bundle_path(state.ctx, digest)


@router.get("/{job_id}/review", responses=errors(401, 403, 404, 422))
def review(job_id: str, actor: Actor, state: State) -> dict[str, Any]:
    """Spec, files and the diff against the researcher's last approved code on the dataset."""
    return review_document(state.ctx, actor, job_id)


@router.get("/{job_id}/bundle", response_class=FileResponse, responses=errors(401, 404, 422))
def bundle(job_id: str, actor: Actor, state: State) -> FileResponse:
    """The code tar exactly as submitted (its researcher, the dataset's owner, admins)."""
    service = state.ctx.service
    job = service.get_job(actor, job_id)
    digest = service.bundle_digest(job)
    return FileResponse(
        _bundle_path(state, digest),
        media_type="application/x-tar",
        headers={SHA256_HEADER: digest.removeprefix("sha256:")},
    )


@router.get("/{job_id}/image", responses=errors(401, 404, 422))
def own_image(job_id: str, actor: Actor, state: State) -> dict[str, Any]:
    """The job's own image as built or loaded at submission: facts, Dockerfile and build log,
    for its researcher as for the owner (404 for a job that runs in an environment)."""
    service = state.ctx.service
    job = service.get_job(actor, job_id)
    view = review_view(service.job_image(job.id), _bundle_path(state, service.bundle_digest(job)))
    if view is None:
        raise NotFound(
            f"job {job_id} runs in the environment {job.spec.environment!r}, no image of its own"
        )
    return view


@router.post("/{job_id}/approve", responses=errors(401, 403, 404, 409, 422))
def approve(
    job_id: str,
    actor: Actor,
    state: State,
    background: BackgroundTasks,
    body: ApproveBody | None = None,
) -> dict[str, Any]:
    """Approve a pending job (the dataset's owner or an admin, never its researcher)."""
    given = body or ApproveBody()
    job = state.ctx.service.approve(actor, job_id, given.note, given.signed)
    background.add_task(state.dispatch, job)
    return job_view(job)


@router.post("/{job_id}/reject", responses=errors(401, 403, 404, 409, 422))
def reject(job_id: str, body: RejectBody, actor: Actor, state: State) -> dict[str, Any]:
    """Reject a pending job with a reason the researcher reads."""
    return job_view(state.ctx.service.reject(actor, job_id, body.reason, body.signed))


@router.post("/{job_id}/cancel", responses=errors(401, 403, 404, 409, 422))
def cancel(
    job_id: str, actor: Actor, state: State, body: CancelBody | None = None
) -> dict[str, Any]:
    """Cancel a pending, approved or running job; a running one's worker stops it."""
    return job_view(state.ctx.service.cancel(actor, job_id, (body or CancelBody()).reason))


@router.post("/{job_id}/release", responses=errors(401, 403, 404, 409, 422))
def release(
    job_id: str,
    actor: Actor,
    state: State,
    background: BackgroundTasks,
    body: ReleaseBody | None = None,
) -> dict[str, Any]:
    """Release a succeeded job's outputs to its researcher; its data host is asked to upload
    them (the control plane checks each against the digests the host signed). A job whose
    output checks failed is released only with ``despite_checks`` (409 otherwise)."""
    given = body or ReleaseBody()
    job = state.ctx.service.release(
        actor, job_id, despite_checks=given.despite_checks, signed=given.signed
    )
    background.add_task(state.ask_host, job, "outputs")
    return job_view(job)


@router.post("/{job_id}/refuse", responses=errors(401, 403, 404, 409, 422))
def refuse(job_id: str, body: RefuseBody, actor: Actor, state: State) -> dict[str, Any]:
    """Refuse to release a succeeded job's outputs, for good, with a reason its researcher
    reads (the job ends cancelled)."""
    return job_view(state.ctx.service.refuse(actor, job_id, body.reason))


@router.post("/{job_id}/trust", responses=errors(401, 403, 404, 409, 422))
def trust(job_id: str, actor: Actor, state: State, body: TrustBody | None = None) -> dict[str, Any]:
    """Trust this job's code on its dataset for its researcher: her later jobs with the same
    code and params (any params with ``{"any_params": true}``) are approved by policy."""
    given = body or TrustBody()
    trusted = state.ctx.service.trust(
        actor, job_id, any_params=given.any_params, signed=given.signed
    )
    return trust_view(trusted)
