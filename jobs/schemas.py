"""Dataset schemas: profiling a dataset as it is registered, and what each person sees of it.

At registration the folder is hashed (``jobs.datasets.scan``) and then profiled
(``jobs.profile``). The two read the files at different moments, so the profile is accepted only
if every file still has the size, mtime and inode the scan hashed; otherwise both are redone
(a few times, then the owner is told to register when nothing writes to the folder). A dataset
whose tables cannot be profiled at all (Parquet without pyarrow) is registered without a
profile; its schema then says why.

``Schemas`` gives the schema to people: the owner (and admins) the whole profile, everyone else
``DatasetProfile.view`` at the policy's level with the owner's public columns. Its
``schema_digest`` (the digest of what researchers see) is written to the ledger at registration,
so a researcher can check the schema they were shown is the one registered.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jobs import access
from jobs.datasets import CachedHash, Scan, scan
from jobs.digests import canonical_digest
from jobs.errors import DatasetError, NotFound
from jobs.models import Dataset, DatasetPolicy, User
from jobs.profile import DatasetProfile, Level, profile_dataset
from jobs.schema_records import ProfileRecord
from jobs.service_core import ServiceCore
from jobs.tabular import ParquetUnavailable

PROFILE_ATTEMPTS = 3


def researcher_view(profile: DatasetProfile, policy: DatasetPolicy) -> dict[str, Any]:
    """The schema document every user who is not the owner sees."""
    return profile.view(policy.schema_view, is_owner=False, public=policy.public_values)


def mock_level(policy: DatasetPolicy) -> Level:
    """The level the data host's mock data is made at: the policy's, but ``columns`` for a
    hidden schema (the owner's dry runs still need columns; their results stay the owner's)."""
    return "columns" if policy.schema_view == "hidden" else policy.schema_view


def _settled(found: Scan, profile: DatasetProfile) -> bool:
    """Whether the files the profile read are the files the scan hashed."""
    if [(f.path, f.bytes) for f in profile.files] != [(e.path, e.size) for e in found.entries]:
        return False
    root = Path(found.root)
    for entry in found.entries:
        cached = found.cache[entry.path]
        try:
            st = os.lstat(root / entry.path)
        except OSError:
            return False
        if (st.st_size, st.st_mtime_ns, st.st_ino) != (cached.size, cached.mtime_ns, cached.inode):
            return False
    return True


def profile_scanned(
    first: Scan,
    policy: DatasetPolicy,
    *,
    max_rows: int | None,
    rescan: Callable[[dict[str, CachedHash]], Scan],
) -> tuple[Scan, ProfileRecord]:
    """Profile the folder ``first`` hashed; return the scan the profile matches, and the record.

    ``rescan(cache)`` hashes the folder again when a file changed in between. Raises
    ``DatasetError`` when the folder keeps changing.
    """
    found = first
    for _ in range(PROFILE_ATTEMPTS):
        try:
            profile = profile_dataset(
                Path(found.root), public=policy.public_values, max_rows_scanned=max_rows
            )
        except ParquetUnavailable as exc:
            return found, ProfileRecord(digest=found.digest, problem=exc.message)
        except DatasetError:
            profile = None  # a file turned into a link or vanished meanwhile: scan again
        if profile is not None and _settled(found, profile):
            digest = canonical_digest(researcher_view(profile, policy))
            record = ProfileRecord(digest=found.digest, profile=profile, schema_digest=digest)
            return found, record
        found = rescan(found.cache)
    raise DatasetError(
        f"the files in {first.root} kept changing while c2d read them; register the dataset "
        "again when nothing writes to the folder",
        path=first.root,
    )


def rescanner(root: Path) -> Callable[[dict[str, CachedHash]], Scan]:
    """``rescan`` for ``profile_scanned``: hash ``root`` again, reusing the fresh hashes."""
    return lambda cache: scan(root, cache)


class Schemas(ServiceCore):
    """Reading dataset schemas, as people and data hosts may."""

    def dataset_schema(self, actor: User, name: str) -> dict[str, Any]:
        """The schema document of dataset ``name`` for ``actor``.

        ``{"dataset", "dataset_digest", "schema" (the policy's level), "full" (whether this is
        the whole profile: owner or admin), "schema_digest", "profile"}``, plus the policy's
        ``public_values`` for the owner. Raises ``NotFound`` for an unknown dataset or one
        without a profile (the message says why and what to do).
        """
        dataset, record = self._profile_record(name)
        profile = record.profile
        assert profile is not None
        full = access.governs(actor, dataset)
        policy = dataset.policy
        doc: dict[str, Any] = {
            "dataset": name,
            "dataset_digest": dataset.digest,
            "schema": policy.schema_view,
            "full": full,
            "schema_digest": record.schema_digest,
            "profile": profile.view(policy.schema_view, is_owner=full, public=policy.public_values),
        }
        if full:
            doc["public_values"] = policy.public_values
        return doc

    def dataset_profile(self, name: str) -> tuple[Dataset, DatasetProfile]:
        """The dataset and its full profile, for the data host's dry runs (no permission
        check). Raises ``NotFound`` like ``dataset_schema``."""
        dataset, record = self._profile_record(name)
        assert record.profile is not None
        return dataset, record.profile

    def _profile_record(self, name: str) -> tuple[Dataset, ProfileRecord]:
        dataset = self._dataset(name)
        record = self._store.get_profile(name)
        if record is None or record.digest != dataset.digest:
            raise NotFound(
                f"dataset {name!r} has no schema: it was registered before c2d profiled "
                f"datasets; its owner registers it again (`c2d dataset add {name} PATH`)"
            )
        if record.profile is None:
            raise NotFound(
                f"dataset {name!r} has no schema: {record.problem or 'it could not be profiled'}"
            )
        return dataset, record
