"""``POST /v1/jobs``: receive a spec and a code bundle, check both, and record the job.

Nothing is stored unless everything passes:

1. The request body is capped while it streams in (``Content-Length`` is checked first, then
   every chunk is counted), so an oversized upload is refused with 413 before it is all read.
2. The multipart form holds one field (``spec``), the ``bundle`` file and, optionally, an
   ``image_archive`` file (a ``docker save`` archive the job runs in).
3. The bundle is copied into a private temporary file under a cap, and every tar header is
   checked as extraction would check it (``jobs.bundle.file_list``) before the job exists.
4. The environment is resolved to a local image ID (never pulled), or the job's own image is
   built from its Dockerfile (``image: {build: PATH}``) or loaded from the optional
   ``image_archive`` file part (capped while copied), on this host's engine with no network
   (``runner.api.own_image``); the image is removed again if the job is not recorded.
5. The bundle is staged in the artifact store (hashed while copied: that is the code digest),
   the job is submitted in one transaction with its ledger entry, and only then is the blob
   committed. On any error the temporary file and the staged blob are deleted.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import IO, Any

from fastapi import APIRouter, BackgroundTasks, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from jobs.bundle import file_list
from jobs.errors import InvalidRequest, TooLarge
from jobs.models import Job, JobSpec, User
from jobs.units import format_size
from runner.api.deps import Actor, State
from runner.api.own_image import own_image, wants_own_image
from runner.api.views import job_view
from runner.byo import receive_archive
from runner.context import Context, byo_policy_from

router = APIRouter(prefix="/v1")

SPEC_MAX = 1024 * 1024
"""Largest ``spec`` field (params are capped far lower by the service)."""
FORM_OVERHEAD = 64 * 1024
_CHUNK = 1024 * 1024

_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["spec", "bundle"],
                    "properties": {
                        "spec": {"type": "string", "description": "The JobSpec as JSON."},
                        "bundle": {
                            "type": "string",
                            "format": "binary",
                            "description": "The deterministic code tar (application/x-tar).",
                        },
                        "image_archive": {
                            "type": "string",
                            "format": "binary",
                            "description": "Optional: a `docker save` archive of one image.",
                        },
                    },
                }
            }
        },
    }
}


def _too_large(cap: int) -> TooLarge:
    return TooLarge(
        f"the code bundle is larger than the {format_size(cap)} this server accepts; "
        "leave data, models and build output out of the job folder (.c2dignore)"
    )


async def _capped(
    stream: AsyncIterator[bytes], limit: int, cap: int
) -> AsyncGenerator[bytes, None]:
    total = 0
    async for chunk in stream:
        total += len(chunk)
        if total > limit:
            raise _too_large(cap)
        yield chunk


async def read_form(request: Request, cap: int, archive_cap: int = 0) -> FormData:
    """Parse the upload's form, refusing (413) a body larger than the bundle cap (plus the
    image archive cap, when the host accepts archives) allows."""
    limit = cap + archive_cap + SPEC_MAX + FORM_OVERHEAD
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise _too_large(cap)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidRequest(
            "send the job as multipart/form-data with a `spec` field (JSON) and a `bundle` file"
        )
    parser = MultiPartParser(
        request.headers,
        _capped(request.stream(), limit, cap),
        max_files=2,
        max_fields=1,
        max_part_size=SPEC_MAX,
    )
    try:
        return await parser.parse()
    except MultiPartException as exc:
        raise InvalidRequest(
            f"the upload is not a valid form ({exc.message}); send one `spec` field and one "
            "`bundle` file"
        ) from exc


def _copy_capped(source: IO[bytes], target: IO[bytes], cap: int) -> None:
    total = 0
    while chunk := source.read(_CHUNK):
        total += len(chunk)
        if total > cap:
            raise _too_large(cap)
        target.write(chunk)
    target.flush()


def _parse_spec(text: str) -> JobSpec:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidRequest(f"the `spec` field is not JSON: {exc}") from exc
    return JobSpec.from_data(data, source="the submitted spec")


def _receive_archive(ctx: Context, archive: IO[bytes], folder: Path) -> Path:
    dest = folder / "image.tar"
    cap = byo_policy_from(ctx.settings).max_archive_bytes
    receive_archive(iter(lambda: archive.read(_CHUNK), b""), dest, cap)
    return dest


def accept(
    ctx: Context, actor: User, spec_text: str, bundle: IO[bytes], archive: IO[bytes] | None = None
) -> Job:
    """Check and record one submission (steps 3-5 of the module docstring)."""
    spec = _parse_spec(spec_text)
    limits = ctx.limits
    cap = limits.max_bundle_bytes
    uploads = ctx.settings.uploads_dir
    with (
        tempfile.NamedTemporaryFile(dir=uploads, prefix="bundle-") as temp,
        tempfile.TemporaryDirectory(dir=uploads, prefix="image-") as folder,
    ):
        _copy_capped(bundle, temp, cap)
        files = file_list(
            Path(temp.name), max_files=limits.max_bundle_files, max_bytes=limits.max_bundle_bytes
        )
        archive_path = None if archive is None else _receive_archive(ctx, archive, Path(folder))
        own = wants_own_image(spec, archive_path)
        image_id = "" if own else ctx.resolve_image(spec.environment)
        temp.seek(0)
        with ctx.artifacts.stage(temp, cap) as staged:  # type: ignore[arg-type]
            if not own:
                job = ctx.service.submit(actor, spec, None, staged.digest, files, image_id)
            else:
                with own_image(ctx, spec, Path(temp.name), staged.digest, archive_path) as record:
                    job = ctx.service.submit(
                        actor, spec, None, staged.digest, files, record.image_id, image=record
                    )
            staged.commit()
    return job


@router.post("/jobs", status_code=201, openapi_extra=_OPENAPI)
async def submit(
    request: Request, actor: Actor, state: State, background: BackgroundTasks
) -> dict[str, Any]:
    """Submit a job: the spec and the code bundle. Pending, or approved at once by policy."""
    archive_cap = byo_policy_from(state.ctx.settings).max_archive_bytes
    form = await read_form(request, state.ctx.limits.max_bundle_bytes, archive_cap)
    try:
        spec = form.get("spec")
        bundle = form.get("bundle")
        archive = form.get("image_archive")
        if archive is not None and not isinstance(archive, UploadFile):
            raise InvalidRequest("`image_archive` must be a file (the output of `docker save`)")
        if not isinstance(spec, str) or not isinstance(bundle, UploadFile):
            raise InvalidRequest(
                "the form needs a `spec` field (the job spec as JSON) and a `bundle` file "
                "(the code tar); `c2d submit` sends both"
            )
        archive_file = archive.file if archive is not None else None
        job = await run_in_threadpool(accept, state.ctx, actor, spec, bundle.file, archive_file)
    finally:
        await form.close()
    background.add_task(state.dispatch, job)
    background.add_task(state.dispatch_dryrun, job)
    return job_view(job)
