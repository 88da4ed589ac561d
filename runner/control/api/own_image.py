"""How review shows a job's own image, which its data host built or loaded at submission
(``runner.host.prepare``): its Dockerfile and the diff against the previous approved one, its
facts, pins and build log."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from jobs.errors import InvalidRequest
from jobs.images import ImageRecord
from jobs.spec import DEFAULT_ENVIRONMENT, JobSpec
from runner.host.images.facts import BuiltImage


def wants_own_image(spec: JobSpec, archive: bool) -> bool:
    """Whether the submission brings its own image (``archive``: it sent one); InvalidRequest
    for a contradictory one."""
    if archive and (spec.image is not None or spec.environment != DEFAULT_ENVIRONMENT):
        raise InvalidRequest(
            "send either an image archive or a job.yaml with `image:` / `environment:`, not "
            "both; remove `image:` and `environment:` from job.yaml to run in the archive's image"
        )
    return archive or spec.image is not None


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
