"""Mock data on the data host, for dry runs: made once from a dataset's profile, then reused.

A mock folder is ``jobs.mock.write_mock`` of the dataset's stored profile at a level, a seed and
a row cap, with the owner's public columns: it depends on nothing else, so it is kept under
``Settings.mocks_dir`` as ``<dataset>/<key>/`` (the key a digest of those inputs and the
dataset's digest) and the next dry run on the same data mounts the same folder. It is made in a
temporary folder and renamed into place, so a folder under its key is always complete; two
workers making the same one at once both end up using the first rename's. Folders of the same
dataset under other keys (older data, another policy) are removed once they are an hour old,
so none that a running dry run has mounted disappears.

The folder holds ``data/`` (mounted at ``/data/NAME``) and ``mock.json``, the ``MockResult``
whose digest goes into the ledger.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from jobs.digests import canonical_digest
from jobs.mock import MockResult, write_mock
from jobs.models import Dataset
from jobs.profile import DatasetProfile, Level

STALE_S = 3600.0


@dataclass(frozen=True)
class MockFolder:
    """A complete mock folder: ``data`` to mount and the ``result`` that made it."""

    data: Path
    result: MockResult


def mock_key(dataset: Dataset, level: Level, seed: int, max_rows: int | None) -> str:
    """The name of the mock folder for these inputs (hex, short enough for a path)."""
    inputs = {
        "dataset_digest": dataset.digest,
        "level": level,
        "seed": seed,
        "max_rows": max_rows,
        "public": dataset.policy.public_values,
    }
    return canonical_digest(inputs).removeprefix("sha256:")[:32]


def _read(folder: Path) -> MockFolder:
    result = MockResult.model_validate_json((folder / "mock.json").read_text())
    return MockFolder(data=folder / "data", result=result)


def ensure_mock(
    root: Path,
    dataset: Dataset,
    profile: DatasetProfile,
    *,
    level: Level,
    seed: int,
    max_rows: int | None,
) -> MockFolder:
    """The mock folder of ``dataset`` for these inputs, made now if it is not there yet.

    Raises what ``write_mock`` raises (``NotAllowed`` for level ``hidden``,
    ``ParquetUnavailable``).
    """
    parent = root / dataset.name
    parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder = parent / mock_key(dataset, level, seed, max_rows)
    if folder.is_dir():
        return _read(folder)
    temp = parent / f".tmp-{secrets.token_hex(6)}"
    try:
        temp.mkdir(mode=0o755)
        result = write_mock(
            profile,
            temp / "data",
            level=level,
            max_rows=max_rows,
            seed=seed,
            public=dataset.policy.public_values,
        )
        (temp / "mock.json").write_text(result.model_dump_json())
        try:
            temp.rename(folder)
        except OSError:
            if not folder.is_dir():  # not another worker's finished copy: a real failure
                raise
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    _prune(parent, keep=folder.name)
    return _read(folder)


def _prune(parent: Path, keep: str) -> None:
    """Remove this dataset's other mock folders (and abandoned temporaries) an hour old."""
    now = time.time()
    for other in parent.iterdir():
        if other.name == keep:
            continue
        with contextlib.suppress(FileNotFoundError):
            if now - other.stat().st_mtime > STALE_S:
                shutil.rmtree(other, ignore_errors=True)
