"""A job's own container image ("bring your own container"): what the store keeps about it.

A job that runs in an image the researcher brought (built from the job folder's Dockerfile, or
loaded from a ``docker save`` archive) is pinned to that image's ID at submission. Its code
digest then covers both the bundle and the image, so the approval binds the exact pair:

    code_digest = sha256(RFC 8785 JSON of {"bundle": bundle_digest, "image": image_id})

The bundle digest is still kept (``ImageRecord.bundle_digest``), because the bundle is stored
and re-checked under it. ``details`` is the data host's description of the image (its facts,
pins and capped build log), opaque to this package and shown at review.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from jobs.digests import Digest, canonical_digest, sha256_digest
from jobs.fields import FROZEN, SCHEMA_VERSION


def image_code_digest(bundle_digest: str, image_id: str) -> str:
    """The code digest of a job that brings its own image: bundle and image ID together."""
    return canonical_digest({"bundle": bundle_digest, "image": image_id})


class ImageRecord(BaseModel):
    """What a data host made of a job's own image, stored beside the job.

    ``source`` is ``dockerfile`` (``dockerfile`` names its path in the bundle) or ``archive``
    (``archive_sha256`` is the uploaded file's digest). ``build_log_digest`` is the sha256 of
    the build (or load) log kept in ``details``.
    """

    model_config = FROZEN

    schema_version: Literal[1] = SCHEMA_VERSION
    bundle_digest: Digest
    image_id: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    source: Literal["dockerfile", "archive"]
    dockerfile: str | None = None
    archive_sha256: Digest | None = None
    build_log_digest: Digest
    details: dict[str, Any] = Field(default_factory=dict)

    @property
    def code_digest(self) -> str:
        """The job's code digest (bundle and image ID)."""
        return image_code_digest(self.bundle_digest, self.image_id)


def log_digest(text: str) -> str:
    """The digest recorded for a build log."""
    return sha256_digest(text.encode("utf-8"))
