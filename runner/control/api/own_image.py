"""A submitted job's own image: built from its Dockerfile or loaded from an uploaded archive.

Both happen on this host's engine at submission (``runner.host.images``), under the host's
``ByoPolicy``; the resulting image ID is what the approval binds, and the job never rebuilds.
``OwnImage`` is a context manager: if anything after the build fails (the job is not
recorded), leaving the block removes the image again, unless another live job already uses the
same ID (a cached rebuild gives the same ID as an earlier submission).
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jobs.errors import InvalidRequest
from jobs.images import ImageRecord, log_digest
from jobs.spec import DEFAULT_ENVIRONMENT, JobSpec
from runner.context import Context
from runner.host.engine import byo_policy_from
from runner.host.images import BuildCache, BuiltImage, build_from_dockerfile, load_archive
from runner.host.images.facts import remove_images

_CHUNK = 1024 * 1024


def _file_sha256(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            hasher.update(chunk)
    return "sha256:" + hasher.hexdigest()


def wants_own_image(spec: JobSpec, archive: Path | None) -> bool:
    """Whether the submission brings its own image; InvalidRequest for a contradictory one."""
    if archive is not None and (spec.image is not None or spec.environment != DEFAULT_ENVIRONMENT):
        raise InvalidRequest(
            "send either an image archive or a job.yaml with `image:` / `environment:`, not "
            "both; remove `image:` and `environment:` from job.yaml to run in the archive's image"
        )
    return archive is not None or spec.image is not None


def _record(
    built: BuiltImage, bundle_digest: str, spec: JobSpec, archive: Path | None
) -> ImageRecord:
    return ImageRecord(
        bundle_digest=bundle_digest,
        image_id=built.image_id,
        source=built.source,
        dockerfile=spec.image.build if spec.image is not None else None,
        archive_sha256=_file_sha256(archive) if archive is not None else None,
        build_log_digest=log_digest(built.build_log),
        details=built.model_dump(mode="json"),
    )


@contextlib.contextmanager
def own_image(
    ctx: Context, spec: JobSpec, bundle: Path, bundle_digest: str, archive: Path | None
) -> Iterator[ImageRecord]:
    """Build (``spec.image``) or load (``archive``) the job's image and yield its record.

    Raises the ``runner.host.images`` errors (refused base, caps, failed build with its log). The
    image is removed when the block raises, unless a live job binds the same ID.
    """
    client = ctx.docker()
    policy = byo_policy_from(ctx.settings)
    if archive is not None:
        built = load_archive(client, archive, policy)
    else:
        assert spec.image is not None  # wants_own_image said so
        built = build_from_dockerfile(
            client,
            bundle.read_bytes(),
            dockerfile=spec.image.build,
            policy=policy,
            cache=BuildCache(ctx.settings.build_cache_dir),
        )
    try:
        yield _record(built, bundle_digest, spec, archive)
    except BaseException:
        if built.image_id not in ctx.service.images_in_use():
            remove_images(client, [built.image_id])
        raise


def _dockerfile_text(record: ImageRecord | None, bundle: Path) -> str | None:
    if record is None or record.dockerfile is None:
        return None
    from runner.host.images.build_context import read_dockerfile

    return read_dockerfile(bundle.read_bytes(), record.dockerfile)


def review_view(
    record: ImageRecord | None,
    bundle: Path,
    previous: ImageRecord | None = None,
    previous_bundle: Path | None = None,
) -> dict[str, Any] | None:
    """What review shows of a job's own image: how it was made, its Dockerfile and the diff
    against the previous approved job's, its facts and its build log. None for other jobs."""
    if record is None:
        return None
    built = BuiltImage.model_validate(record.details)
    text = _dockerfile_text(record, bundle) or ""
    before = "" if previous_bundle is None else _dockerfile_text(previous, previous_bundle) or ""
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        text.splitlines(keepends=True),
        "previous approved Dockerfile" if before else "(none approved before)",
        record.dockerfile or "Dockerfile",
    )
    return {
        "source": record.source,
        "dockerfile": record.dockerfile,
        "dockerfile_text": text,
        "dockerfile_diff": "".join(lines),
        "archive_sha256": record.archive_sha256,
        "archive_tags": list(built.archive_tags),
        "pins": built.pins,
        "facts": built.facts.model_dump(mode="json"),
        "build_log": built.build_log,
        "build_log_digest": record.build_log_digest,
    }
