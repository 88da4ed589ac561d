"""What a data owner reads before deciding about a job, assembled once for every reader.

``review_document`` is the body of ``GET /v1/jobs/{id}/review`` (which ``c2d review`` prints)
and what the browser's review page shows: the job, its dry run on mock data, its own image
(facts, Dockerfile and its diff), its files, and the diff of its code against this researcher's
last approved code on the dataset. Only the dataset's owner and admins may read it.

``queue_document`` is what waits for an owner (``GET /v1/queue``, the browser's queue page):
pending jobs on her datasets with their dry runs, and succeeded jobs waiting for release.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter

from jobs import access, tarsafe
from jobs.bundle import diff
from jobs.errors import NotAllowed
from jobs.models import Job, User
from runner.context import Context
from runner.control.api.deps import Actor, State
from runner.control.api.errors import errors
from runner.control.api.own_image import review_view
from runner.control.api.views import job_view
from runner.errors import ArtifactNotFound

router = APIRouter(prefix="/v1")


def bundle_path(ctx: Context, digest: str) -> Path:
    """Where the code bundle with ``digest`` is stored (``ArtifactNotFound`` if it is not)."""
    return ctx.artifacts.path(digest)


def review_document(ctx: Context, actor: User, job_id: str) -> dict[str, Any]:
    """Spec, dry run, image, files and the diff against the researcher's last approved code.

    Raises ``NotFound`` (``actor`` cannot see the job) and ``NotAllowed`` (``actor`` sees it
    but does not govern its dataset: its researcher, say).
    """
    service = ctx.service
    job = service.get_job(actor, job_id)
    if not access.governs(actor, service.dataset_of(job)):
        raise NotAllowed(f"only the owner of dataset {job.dataset!r} or an admin reviews jobs")
    limits = ctx.limits
    caps = {"max_files": limits.max_bundle_files, "max_bytes": limits.max_bundle_bytes}
    record = service.job_image(job.id)
    bundle = bundle_path(ctx, service.bundle_digest(job))
    with tarsafe.open_tar(bundle) as tar:
        members = tarsafe.read_members(tar, **caps)
    files = [{"name": m.path, "bytes": m.size} for m in members if not m.is_dir]
    previous = service.last_approved_for(job.researcher, job.dataset, exclude=job.id)
    # With nothing approved before, the diff is against nothing: the owner reads every line.
    old = None
    if previous is not None:
        try:
            old = bundle_path(ctx, service.bundle_digest(previous))
        except ArtifactNotFound:
            previous = None
    text = diff(old, bundle, **caps)
    before = service.job_image(previous.id) if previous is not None else None
    return {
        "job": job_view(job),
        # The pre-approval run on mock data (None until the data host has run it).
        "dryrun": service.dryrun_for(actor, job.id),
        "image": review_view(record, bundle, before, old),
        "files": sorted(files, key=lambda f: str(f["name"])),
        "previous": previous.id if previous else None,
        "diff": text,
    }


def queue_entry(ctx: Context, actor: User, job: Job) -> dict[str, Any]:
    """One job of the queue: the job and its dry run as ``actor`` may see them."""
    return {"job": job_view(job), "dryrun": ctx.service.dryrun_for(actor, job.id)}


def queue_document(ctx: Context, actor: User) -> list[dict[str, Any]]:
    """What waits for ``actor``'s decision, oldest first (``Service.review_queue``)."""
    return [queue_entry(ctx, actor, job) for job in ctx.service.review_queue(actor)]


@router.get("/queue", responses=errors(401))
def queue(actor: Actor, state: State) -> list[dict[str, Any]]:
    """Pending jobs on the caller's datasets (with their dry runs) and succeeded jobs whose
    outputs wait for release, oldest first; empty for researchers."""
    return queue_document(state.ctx, actor)
