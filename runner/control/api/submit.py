"""``POST /v1/jobs``: receive a spec and a code bundle, check both, and record the job.

Nothing is stored unless everything passes:

1. The request body is capped while it streams in (``Content-Length`` is checked first, then
   every chunk is counted), so an oversized upload is refused with 413 before it is all read.
   The cap is the bundle cap plus room for the spec and the form, and grows by an image
   archive only when the request declares one: ``X-C2D-Archive-Bytes: N`` (``c2d submit
   --image-archive`` sends it), N at most the host's archive cap. So a bundle-only request
   can never make the server take in gigabytes.
2. The multipart form holds the ``spec`` field, optionally the ``signed`` field, the
   ``bundle`` file and, only when declared, one ``image_archive`` file (a ``docker save``
   archive the job runs in). Each file part is capped while it is parsed (the bundle at the
   bundle cap, the archive at its declared size) and spooled past 1 MiB into the state
   folder's upload folder, never the system's ``/tmp``.
3. The bundle is copied into a private temporary file under a cap, and every tar header is
   checked as extraction would check it (``jobs.bundle.file_list``) before the job exists.
4. The environment is resolved to the image ID the dataset's data host offers for it (its last
   hello), or the job's own image is built from its Dockerfile (``image: {build: PATH}``) or
   loaded from the optional ``image_archive`` file part (capped while copied) on that data
   host, with no network, while the submission waits (``runner.control.api.preparing``).
5. The bundle is staged in the artifact store (hashed while copied: that is the code digest),
   the optional ``signed`` field (the researcher's ``c2d/submit`` statement over that digest)
   is checked, the job is submitted in one transaction with its ledger entry, and only then is
   the blob committed. On any error the temporary file and the staged blob are deleted.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import IO, Any

from fastapi import APIRouter, BackgroundTasks, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from jobs.bundle import file_list
from jobs.errors import InvalidRequest, SpecError, TooLarge
from jobs.images import ImageRecord
from jobs.models import Job, JobSpec, User
from jobs.signed_actions import SignedEnvelope, envelope_of
from jobs.units import format_size, parse_size
from runner.control.api.deps import Actor, ApiState, State
from runner.control.api.errors import errors
from runner.control.api.links import job_links, linked
from runner.control.api.own_image import wants_own_image
from runner.control.api.preparing import ANSWER_MARGIN_S
from runner.control.api.views import job_view
from runner.errors import ServiceUnavailable
from runner.wire import ARCHIVE_HEADER

router = APIRouter(prefix="/v1")

SPEC_MAX = 1024 * 1024
"""Largest ``spec`` field (params are capped far lower by the service)."""
SIGNED_MAX = 16 * 1024
"""Largest ``signed`` field: a submit statement and its signature take well under 1 KiB."""
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
                        "spec": {
                            "type": "string",
                            "contentMediaType": "application/json",
                            "description": "The JobSpec as JSON (job.yaml, as `c2d submit` "
                            "reads it), at most 1 MiB.",
                        },
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
                        "signed": {
                            "type": "string",
                            "contentMediaType": "application/json",
                            "description": "Optional: the researcher's signed c2d/submit "
                            "statement, {statement, signature, key} as JSON "
                            "(jobs.signed_actions).",
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


def _request_too_large(cap: int, archive: int) -> TooLarge:
    if archive:
        return TooLarge(
            f"the upload is larger than the code bundle cap ({format_size(cap)}) and the "
            f"image archive it declared ({archive} bytes) allow"
        )
    return TooLarge(
        f"the upload is larger than the {format_size(cap)} code bundle this server accepts "
        f"(an image archive must be declared in the {ARCHIVE_HEADER} header, as `c2d submit "
        "--image-archive` does); leave data, models and build output out of the job folder "
        "(.c2dignore)"
    )


async def _capped(
    stream: AsyncIterator[bytes], limit: int, refusal: TooLarge
) -> AsyncGenerator[bytes, None]:
    total = 0
    async for chunk in stream:
        total += len(chunk)
        if total > limit:
            raise refusal
        yield chunk


def declared_archive(headers: Headers, archive_cap: int) -> int:
    """The image archive size the request declares (0: none); 413 past the host's cap."""
    raw = headers.get(ARCHIVE_HEADER)
    if raw is None:
        return 0
    if not raw.strip().isdigit():
        raise InvalidRequest(f"{ARCHIVE_HEADER} must be the image archive's size in bytes")
    size = int(raw)
    if size > archive_cap:
        raise TooLarge(
            f"the image archive is {format_size(size)}, more than the {format_size(archive_cap)} "
            "this server accepts; slim the image down"
        )
    return size


class _UploadParser(MultiPartParser):
    """Starlette's multipart parser with a cap per file part and its spool in ``spool_dir``.

    It reaches into the part being parsed (``_current_part``) and the list of files to close
    on error, as Starlette's own callbacks do: Starlette offers no hook for either.
    """

    def __init__(
        self,
        headers: Headers,
        stream: AsyncGenerator[bytes, None],
        *,
        caps: dict[str, int],
        spool_dir: Path,
    ) -> None:
        super().__init__(headers, stream, max_files=2, max_fields=2, max_part_size=SPEC_MAX)
        self.caps = caps
        self.spool_dir = spool_dir
        self.received: dict[str, int] = {}

    def on_headers_finished(self) -> None:
        super().on_headers_finished()
        part = self._current_part
        if part.file is None:
            return
        name = part.field_name
        if name == "image_archive" and name not in self.caps:
            raise MultiPartException(
                f"an `image_archive` part must be declared in the {ARCHIVE_HEADER} header "
                "(its size in bytes), as `c2d submit --image-archive` does"
            )
        if name not in self.caps:
            allowed = " and ".join(f"`{n}`" for n in self.caps)
            raise MultiPartException(
                f"unexpected file part `{name}` (this request may hold {allowed})"
            )
        if name in self.received:
            raise MultiPartException(f"more than one `{name}` file")
        self.received[name] = 0
        # Starlette spools a file past 1 MiB to the system's temp folder; ours stays in the
        # state folder, whose disk the operator sized for uploads. Closed with the form, or
        # by Starlette when parsing fails, as its own spool would be.
        spool = tempfile.SpooledTemporaryFile(  # noqa: SIM115
            max_size=self.spool_max_size, dir=str(self.spool_dir)
        )
        self._files_to_close_on_error[-1].close()
        self._files_to_close_on_error[-1] = spool
        part.file.file = spool  # type: ignore[assignment]  # as Starlette's own spool

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._current_part
        if part.file is not None:
            name = part.field_name
            self.received[name] += end - start
            cap = self.caps[name]
            if self.received[name] > cap and name == "bundle":
                raise _too_large(cap)
            if self.received[name] > cap:
                raise TooLarge(f"the `{name}` part is larger than the {cap} bytes declared")
        super().on_part_data(data, start, end)


async def read_form(
    request: Request, cap: int, archive_cap: int = 0, *, spool_dir: Path
) -> FormData:
    """Parse the upload's form, refusing (413) a body larger than the bundle cap allows, plus
    the image archive the request declares (``ARCHIVE_HEADER``, at most ``archive_cap``)."""
    archive = declared_archive(request.headers, archive_cap)
    limit = cap + archive + SPEC_MAX + FORM_OVERHEAD
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise _request_too_large(cap, archive)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidRequest(
            "send the job as multipart/form-data with a `spec` field (JSON) and a `bundle` file"
        )
    caps = {"bundle": cap, **({"image_archive": archive} if archive else {})}
    stream = _capped(request.stream(), limit, _request_too_large(cap, archive))
    parser = _UploadParser(request.headers, stream, caps=caps, spool_dir=spool_dir)
    try:
        return await parser.parse()
    except MultiPartException as exc:
        raise InvalidRequest(
            f"the upload is not a valid form ({exc.message}); send one `spec` field (and "
            "optionally a `signed` one) and one `bundle` file"
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


def _signed_field(value: str | UploadFile | None) -> SignedEnvelope | None:
    """The optional ``signed`` form field: the envelope as JSON (``InvalidRequest`` if not)."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > SIGNED_MAX:
        raise InvalidRequest("`signed` must be a short JSON field, as `c2d submit` sends it")
    try:
        data = json.loads(value)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise InvalidRequest("`signed` is not a JSON object {statement, signature, key}")
    return envelope_of(data)


def _host_of(state: ApiState, actor: User, spec: JobSpec) -> str:
    """The data host of the job's dataset (the service refuses a spec without one)."""
    if spec.dataset is None:
        raise SpecError(
            "no dataset given: set `dataset:` in job.yaml or pass --dataset NAME",
            field="dataset",
            allowed="the name of a registered dataset (`c2d dataset list`)",
        )
    return state.ctx.service.get_dataset(actor, spec.dataset).policy.host


def _own_image(
    state: ApiState, actor: User, spec: JobSpec, bundle_digest: str, archive_digest: str | None
) -> ImageRecord:
    """Ask the dataset's data host to build or load the job's own image; wait for its record."""
    host = _host_of(state, actor, spec)
    dockerfile = spec.image.build if spec.image is not None else None
    prep = state.preparations.open(host, bundle_digest, dockerfile, archive_digest)
    if not state.prepare(prep.id, host):
        state.preparations.wait(prep, 0)  # closes it
        raise ServiceUnavailable(
            "the broker (Redis) does not answer, so the data host cannot be asked to make the "
            "job's image; try again shortly"
        )
    return state.preparations.wait(prep, state.ctx.settings.byo_max_build_s + ANSWER_MARGIN_S)


def accept(
    state: ApiState,
    actor: User,
    spec_text: str,
    bundle: IO[bytes],
    archive: IO[bytes] | None = None,
    signed: SignedEnvelope | None = None,
) -> Job:
    """Check and record one submission (steps 3-5 of the module docstring); ``signed`` is
    checked against the bundle digest computed here."""
    ctx = state.ctx
    spec = _parse_spec(spec_text)
    limits = ctx.limits
    cap = limits.max_bundle_bytes
    uploads = ctx.settings.uploads_dir
    with tempfile.NamedTemporaryFile(dir=uploads, prefix="bundle-") as temp:
        _copy_capped(bundle, temp, cap)
        files = file_list(
            Path(temp.name), max_files=limits.max_bundle_files, max_bytes=limits.max_bundle_bytes
        )
        own = wants_own_image(spec, archive is not None)
        temp.seek(0)
        with ctx.artifacts.stage(temp, cap) as staged:  # type: ignore[arg-type]
            if not own:
                host = _host_of(state, actor, spec)
                image_id = ctx.service.offered_image(host, spec.environment)
                job = ctx.service.submit(
                    actor, spec, None, staged.digest, files, image_id, signed=signed
                )
                staged.commit()
                return job
            # The host fetches bundle and archive from the store, so both go in first, and
            # come out again when no job is recorded (nothing would name the researcher's code).
            new = [] if ctx.artifacts.has(staged.digest) else [staged.digest]
            staged.commit()
        try:
            archive_digest = None
            if archive is not None:
                archive_cap = parse_size(ctx.settings.byo_max_archive)
                had = False
                with ctx.artifacts.stage(archive, archive_cap) as staged_archive:  # type: ignore[arg-type]
                    had = ctx.artifacts.has(staged_archive.digest)
                    archive_digest = staged_archive.commit()
                if not had:
                    new.append(archive_digest)
            record = _own_image(state, actor, spec, staged.digest, archive_digest)
            image_id = record.image_id
            return ctx.service.submit(
                actor, spec, None, staged.digest, files, image_id, image=record, signed=signed
            )
        except BaseException:
            for digest in new:
                if not ctx.store.names_blob(digest):
                    ctx.artifacts.remove(digest)
            raise


@router.post(
    "/jobs",
    status_code=201,
    openapi_extra=_OPENAPI,
    responses=linked(201, job_links("$response.body#/id"))
    | errors(401, 403, 404, 409, 413, 422, 503),
)
async def submit(
    request: Request, actor: Actor, state: State, background: BackgroundTasks
) -> dict[str, Any]:
    """Submit a job: the spec and the code bundle. Pending, or approved at once by policy."""
    settings = state.ctx.settings
    archive_cap = parse_size(settings.byo_max_archive)
    form = await read_form(
        request, state.ctx.limits.max_bundle_bytes, archive_cap, spool_dir=settings.uploads_dir
    )
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
        signed = _signed_field(form.get("signed"))
        job = await run_in_threadpool(accept, state, actor, spec, bundle.file, archive_file, signed)
    finally:
        await form.close()
    background.add_task(state.dispatch, job)
    background.add_task(state.dispatch_dryrun, job)
    return job_view(job)
