"""Submitting a job folder, with every check `c2d submit` makes, for any caller.

``prepare`` reads and validates ``FOLDER/job.yaml`` (``jobs.spec.JobSpec``), applies the
caller's dataset and params, and packs the folder into the deterministic bundle
(``jobs.bundle.pack``): the same folder always gives the same code digest. ``send`` uploads it
and checks that the server recorded exactly that code: the bundle's digest, or for a job that
brings its own image the digest of bundle and image together (``jobs.images``). A server that
recorded other code is an ``IntegrityError``: the job must be cancelled, not trusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs.bundle import Bundle, pack
from jobs.errors import SpecError
from jobs.images import image_code_digest
from jobs.spec import JobSpec
from runner.client.api import Client
from runner.client.download import DownloadObserver
from runner.errors import IntegrityError


@dataclass(frozen=True)
class Prepared:
    """A job folder ready to send: its validated spec and its packed bundle."""

    folder: Path
    spec: JobSpec
    bundle: Bundle


def prepare(
    folder: Path | str, *, dataset: str | None = None, params: dict[str, Any] | None = None
) -> Prepared:
    """Validate ``folder/job.yaml`` with the overrides and pack ``folder``.

    Raises ``SpecError`` (naming the file, the field and what is allowed) for a bad spec or no
    dataset, ``BundleError`` for a folder that cannot be packed.
    """
    folder = Path(folder)
    spec_file = folder / "job.yaml"
    spec = JobSpec.from_yaml(spec_file).with_overrides(dataset=dataset, params=params)
    if spec.dataset is None:
        raise SpecError(
            f"{spec_file}: no dataset to run on; add `dataset: NAME` or pass the dataset",
            file=str(spec_file),
            field="dataset",
            allowed="a registered dataset name (`c2d dataset list`)",
        )
    return Prepared(folder, spec, pack(folder))


def send(
    client: Client,
    prepared: Prepared,
    *,
    image_archive: Path | None = None,
    max_archive_bytes: int = 4 * 2**30,
    observer: DownloadObserver | None = None,
) -> dict[str, Any]:
    """Upload a prepared job; return the job as the API shows it, once its code is checked."""
    job = client.submit(
        prepared.spec.model_dump(mode="json"),
        prepared.bundle.data,
        image_archive,
        max_archive_bytes=max_archive_bytes,
        observer=observer,
    )
    digest = prepared.bundle.digest
    # An own image's code digest covers the bundle sent and the image the host made.
    expected = (
        image_code_digest(digest, job["image_id"])
        if owns_image(prepared, image_archive)
        else digest
    )
    if job.get("code_digest") != expected:
        raise IntegrityError(
            f"the server recorded code {job.get('code_digest')} for job {job['id']}, but "
            f"the bundle sent hashes to {digest}; cancel it (`c2d cancel {job['id']}`) and "
            "tell the operator"
        )
    return job


def owns_image(prepared: Prepared, image_archive: Path | None = None) -> bool:
    """Whether the job runs in an image of its own (built from its Dockerfile, or loaded)."""
    return image_archive is not None or prepared.spec.image is not None
