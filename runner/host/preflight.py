"""The checks before a claimed job may start, and the sandbox spec they produce.

Every digest the approval bound is computed again from what is about to run:

1. code: the bundle is read back from the artifact store and hashed;
2. image: the job's environment is resolved to a local image ID again (never pulled); a
   container being adopted keeps the image it was started from. A job that brought its own
   image runs exactly the ID bound at submission, which must still be here (never rebuilt),
   and its code digest is recomputed over bundle and image (``jobs.images``);
3. dataset: the dataset folder is re-hashed (unchanged files come from the hash cache);
4. params: the effective parameters are canonicalized and hashed.

``Service.check_bound`` then refuses the run (``DigestMismatch``) if any differs, and only then
is the verified bundle extracted, so unapproved code never reaches the disk of a data host
beside real data (the pre-approval dry run, ``runner.host.dryrun``, extracts it into a folder of its
own, mounted beside mock data only).

The spec's ``live_log`` follows the dataset's policy as the control plane holds it
(``jobs.access.live_log``): only a run whose researcher may read its log at any time has its
output written to Redis as it comes (``runner.livelog``); any other run's log stays on this
host until the job ended and someone who may read it asks (``runner.host.delivery``).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
from pathlib import Path

from jobs.access import live_log
from jobs.bundle import extract
from jobs.digests import canonical_digest
from jobs.execution import Execution
from jobs.images import image_code_digest
from jobs.models import Job
from runner.errors import ImageGone, IntegrityError
from runner.host.context import HostContext as Context
from runner.host.datasets import current_digest
from runner.host.sandbox.interface import SandboxSpec, State
from runner.host.sandbox.specs import Sandboxing, sandbox_spec

_CHUNK = 1024 * 1024


def file_digest(path: Path) -> str:
    """``sha256:<hex>`` of a file, read in chunks."""
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            hasher.update(chunk)
    return "sha256:" + hasher.hexdigest()


def code_folder(ctx: Context, job_id: str) -> Path:
    """Where the job's extracted code lives on this host (mounted at ``/code``)."""
    return ctx.settings.code_dir / job_id


def remove_code(ctx: Context, job_id: str) -> None:
    """Delete the job's extracted code; idempotent."""
    shutil.rmtree(code_folder(ctx, job_id), ignore_errors=True)


def _extract_once(ctx: Context, job: Job, bundle: Path) -> Path:
    """Extract the bundle to the job's code folder unless an earlier attempt already did.

    The folder appears by an atomic rename, so if it exists it is complete; it is never
    replaced, because an adopted container may have it mounted.
    """
    dest = code_folder(ctx, job.id)
    if dest.is_dir():
        return dest
    temp = ctx.settings.code_dir / f".{job.id}.{os.getpid()}.{secrets.token_hex(4)}"
    try:
        extract(bundle, temp, ctx.limits.max_bundle_files, ctx.limits.max_bundle_bytes)
        temp.chmod(0o755)
        try:
            temp.rename(dest)
        except OSError:
            if not dest.is_dir():  # not another worker's finished copy: a real failure
                raise
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return dest


def own_image_id(ctx: Context, image_id: str) -> str:
    """The ID of the job's own image as this host's engine has it; ImageGone if it is not here.

    Never rebuilds: a rebuild would give another ID (build timestamps), which the approval
    did not bind.
    """
    from runner.host.images.facts import inspect

    try:
        attrs = inspect(ctx.docker(), image_id)
    except ImageGone as exc:
        raise ImageGone(
            f"the job's own image {image_id} is no longer on this host, so the approved image "
            "cannot run; resubmit the job to build or load its image again"
        ) from exc
    return str(attrs["Id"])


def prepare_run(ctx: Context, job: Job) -> SandboxSpec:
    """Re-check the four bound digests, extract the code, and return the sandbox spec.

    Raises ``DigestMismatch`` (kind ``failed``) naming what changed; ``ArtifactNotFound`` if
    the bundle is gone; ``DatasetError`` if the dataset folder cannot be read; environment
    errors if the image is not on this host; ``ServiceUnavailable`` if Docker does not answer.
    """
    own = ctx.control.job_image(job.id)
    bundle_digest = job.code_digest if own is None else own.bundle_digest
    try:
        bundle = ctx.control.fetch_bundle(job, bundle_digest, ctx.artifacts)
    except IntegrityError as exc:
        raise IntegrityError(
            f"refused to run: {exc}; the job must be submitted and approved again"
        ) from exc
    code_digest = file_digest(bundle)
    if code_digest != bundle_digest:
        # This host's copy changed on disk after it was fetched and checked: it is refused
        # below, and removed so that the next job with this code fetches it afresh.
        ctx.artifacts.remove(bundle_digest)
    if own is not None:
        image_id = own_image_id(ctx, own.image_id)
        code_digest = image_code_digest(code_digest, image_id)
    elif ctx.executor().status(job.id) in (State.RUNNING, State.EXITED) and job.approval:
        # Adopting: the container was created from the approved image ID after this same
        # check; a tag moved since (an environment rebuilt) must not kill a run in progress.
        image_id = job.approval.image_id
    else:
        image_id = ctx.resolve_image(job.spec.environment)
    dataset = ctx.control.dataset(job.dataset)
    dataset_digest = current_digest(ctx.settings, ctx.registry, dataset.name)
    local = ctx.registry.get_dataset(dataset.name)
    assert local is not None  # current_digest found it
    params_digest = canonical_digest(job.spec.params)
    Execution.check_bound(job, code_digest, image_id, dataset_digest, params_digest)
    code = _extract_once(ctx, job, bundle)
    return sandbox_spec(
        job.spec,
        sandbox_id=job.id,
        image_id=image_id,
        code_dir=code,
        datasets={dataset.name: Path(local.path)},
        sandboxing=Sandboxing.of(ctx.settings),
        max_metrics=dataset.policy.max_metrics,
        # A log is derived from the data: it leaves this host as it comes only where the
        # researcher may read it at any time anyway; elsewhere it stays here until asked for.
        live_log=live_log(dataset),
    )
