"""Mock data: synthetic files shaped like a dataset, made from its profile alone.

``write_mock(profile, out, level=...)`` first redacts the profile to ``level`` (see
``jobs.profile``) and then generates from what is left, so the mock can tell nothing that the
level's view does not: a mock made from the full profile and one made from the researcher's
view are the same bytes. Layout, file names, formats, columns and types are the dataset's;
row counts too unless ``rows`` is given. No cell is copied from the data, because the profile
holds no cell beyond what the view shows (min and max at ``stats``, public values):

- numbers at ``columns`` come from type defaults (integers 0-99, floats standard normal);
  at ``stats`` integers are uniform over [min, max] and floats normal(mean, std) kept strictly
  inside (min, max), so a float equals an observed one only by a chance of order 2**-52.
  A drawn integer may equal a real one by chance, which is unavoidable for any integer
  column and tells nothing about a record. Integer keys are numbered 1..n.
- strings are placeholders ``<column>_<n>`` (n the row number for keys and free text, 1..k
  for categories, k the distinct count at ``stats``, else 3), unless the owner made the
  column public: then its real values are drawn (weighted by their counts at ``stats``).
- booleans are fair coins (the observed true fraction at ``stats``), datetimes uniform over
  2000-2024 (over [min, max] at ``stats``), nulls at 10% in nullable columns (the observed
  rate at ``stats``, at least one null so pandas reads the same types).
- other files, and tables that could not be profiled, become empty files of the same name.

The same profile, level, rows and seed give byte-identical files (with the same numpy and
pandas), hence the same digest, computed like a dataset's (``jobs.datasets``), for the ledger.
Files are 0644 and folders 0755 so the sandbox user can read them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from jobs.datasets import scan
from jobs.digests import Digest
from jobs.errors import InvalidRequest, NotAllowed
from jobs.fields import FROZEN, SCHEMA_VERSION
from jobs.profile import ColumnProfile, DatasetProfile, FileProfile, Level, PublicValues
from jobs.tabular import CHUNK_ROWS, TableWriter, create_file

DEFAULT_INTEGERS = (0, 99)
DEFAULT_CATEGORIES = 3
DEFAULT_NULL_RATE = 0.1
DEFAULT_DATES = ("2000-01-01", "2024-12-31")
MAX_CATEGORIES = 1_000


class MockFile(BaseModel):
    """One written file: its path, rows (``None`` if not a table) and size."""

    model_config = FROZEN

    path: str
    rows: int | None
    bytes: int = Field(ge=0)


class MockResult(BaseModel):
    """What ``write_mock`` wrote: the folder's dataset digest and its files."""

    model_config = FROZEN

    schema_version: Literal[1] = SCHEMA_VERSION
    digest: Digest
    level: Level
    seed: int
    files: tuple[MockFile, ...]


def write_mock(
    profile: DatasetProfile,
    out: Path,
    *,
    level: Level,
    rows: int | None = None,
    max_rows: int | None = None,
    seed: int = 0,
    public: PublicValues | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> MockResult:
    """Write mock files for ``profile`` as ``level`` shows it into ``out`` (new or empty).

    ``rows`` replaces every table's row count and ``max_rows`` caps it (a quick dry run need
    not write a billion rows); ``public`` is the owner's public columns.
    Raises ``NotAllowed`` for ``hidden`` (there is no schema to mock) and ``InvalidRequest``
    for a non-empty ``out``, a negative ``rows``, ``max_rows`` or ``seed``.
    """
    if level == "hidden":
        raise NotAllowed(
            "the owner keeps this dataset's schema hidden, so no mock data can be made; "
            "ask the owner for a `columns` schema policy or a description of the files"
        )
    for what, value in (("rows", rows), ("max_rows", max_rows)):
        if value is not None and value < 0:
            raise InvalidRequest(f"{what} must be 0 or more, got {value}")
    if seed < 0:
        raise InvalidRequest(f"seed must be 0 or more, got {seed}")
    shown = profile.redacted(level, public)
    _prepare(out)
    written: list[tuple[str, int | None]] = []
    for entry in shown.files:
        target = _target(out, entry.path)
        if entry.format == "other" or entry.columns is None:
            create_file(target).close()
            written.append((entry.path, None))
            continue
        count = rows if rows is not None else entry.rows or 0
        count = count if max_rows is None else min(count, max_rows)
        _write_table(entry, target, count, seed, chunk_rows)
        written.append((entry.path, count))
    result = scan(out)
    sizes = {e.path: e.size for e in result.entries}
    files = tuple(MockFile(path=p, rows=n, bytes=sizes[p]) for p, n in written)
    return MockResult(
        digest=result.digest, level=shown.redacted_to or level, seed=seed, files=files
    )


def _prepare(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidRequest(f"{out} is not an empty folder; pass a new or empty folder")
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(0o755)


def _target(out: Path, rel: str) -> Path:
    """``out/rel``, creating its folders (0755); the profile's paths are already relative."""
    folder = out
    for part in rel.split("/")[:-1]:
        folder = folder / part
        if not folder.is_dir() or folder.is_symlink():
            folder.mkdir()
            folder.chmod(0o755)
    return folder / rel.split("/")[-1]


def _write_table(entry: FileProfile, target: Path, rows: int, seed: int, chunk_rows: int) -> None:
    columns = entry.columns or ()
    makers = [_Column(c, entry, seed) for c in columns]
    with TableWriter(target, entry.format, entry.compression) as writer:
        for start in range(0, rows, chunk_rows) if rows else [0]:
            n = min(chunk_rows, rows - start)
            writer.write(pd.DataFrame({m.col.name: m.chunk(start, n) for m in makers}))


class _Column:
    """Draws one column chunk by chunk from its own generator, so columns do not interact."""

    def __init__(self, col: ColumnProfile, entry: FileProfile, seed: int) -> None:
        self.col = col
        self.text = entry.format != "parquet"
        words = hashlib.sha256(f"{entry.path}\0{col.name}".encode()).digest()
        self.rng = np.random.default_rng([seed, *np.frombuffer(words[:16], dtype="<u4")])
        if col.nulls is not None and entry.scanned:
            self.null_rate = col.nulls / entry.scanned
        else:
            self.null_rate = DEFAULT_NULL_RATE if col.nullable else 0.0

    def chunk(self, start: int, n: int) -> pd.Series:
        """Rows ``start .. start+n-1`` of the column."""
        mask = self.rng.random(n) < self.null_rate
        if self.col.nullable and start == 0 and n and not mask.any():
            mask[self.rng.integers(n)] = True
        dtype = self.col.dtype
        if dtype == "integer":
            series = pd.Series(self._integers(start, n), dtype="int64")
            series = series.astype("Int64") if self.col.nullable else series
        elif dtype == "float":
            series = pd.Series(self._floats(n), dtype="float64")
        elif dtype == "boolean":
            p = self.col.mean if self.col.mean is not None else 0.5
            series = pd.Series(self.rng.random(n) < p)
            series = series.astype("boolean") if self.col.nullable else series
        elif dtype == "datetime":
            series = self._datetimes(n)
        else:
            series = self._strings(start, n)
        return series.mask(mask) if mask.any() else series

    def _integers(self, start: int, n: int) -> np.ndarray:
        col = self.col
        if col.values:
            return self._choice(n)
        if col.key:
            return np.arange(start + 1, start + n + 1)
        low, high = DEFAULT_INTEGERS
        if isinstance(col.min, int) and isinstance(col.max, int):
            low, high = col.min, col.max
        return self.rng.integers(low, high, size=n, endpoint=True)

    def _floats(self, n: int) -> np.ndarray:
        col = self.col
        if not isinstance(col.min, int | float) or not isinstance(col.max, int | float):
            return self.rng.standard_normal(n)
        low, high = float(col.min), float(col.max)
        if low == high:
            return np.full(n, low)  # a constant column: its value is in the view already
        mean = col.mean if col.mean is not None else (low + high) / 2
        std = col.std or (high - low) / 6
        drawn = self.rng.normal(mean, std, n)
        # Strictly inside (min, max): the observed extremes themselves are never emitted.
        outside = (drawn <= low) | (drawn >= high)
        drawn[outside] = self.rng.uniform(low, high, int(outside.sum()))
        return np.where(drawn <= low, np.nextafter(low, high), drawn)

    def _datetimes(self, n: int) -> pd.Series:
        col = self.col
        bounds = (col.min, col.max) if isinstance(col.min, str) else DEFAULT_DATES
        low, high = (_naive(pd.Timestamp(b)) for b in bounds)
        unit = "D" if col.date_only else "s"
        span = int((high - low) / pd.Timedelta(1, unit))
        offsets = self.rng.integers(0, span, size=n, endpoint=True)
        series = pd.Series(low.floor(unit) + pd.to_timedelta(offsets, unit=unit))
        if self.text:
            return series.dt.strftime("%Y-%m-%d" if col.date_only else "%Y-%m-%d %H:%M:%S")
        return series

    def _strings(self, start: int, n: int) -> pd.Series:
        col = self.col
        if col.values:
            series = pd.Series(self._choice(n), dtype="str")
            categories: list[str] = [str(v) for v in col.values]
        elif col.dtype == "category":
            k = min(col.distinct or DEFAULT_CATEGORIES, MAX_CATEGORIES)
            series = _placeholders(col.name, self.rng.integers(1, k, size=n, endpoint=True))
            categories = [f"{col.name}_{i}" for i in range(1, k + 1)]
        elif col.key or col.distinct is None:
            return _placeholders(col.name, np.arange(start + 1, start + n + 1))
        else:
            k = max(col.distinct, 1)
            return _placeholders(col.name, self.rng.integers(1, k, size=n, endpoint=True))
        if col.categorical and not self.text:
            return series.astype(pd.CategoricalDtype(categories))
        return series

    def _choice(self, n: int) -> np.ndarray:
        values = self.col.values or ()
        counts = self.col.counts
        weights = None
        if counts and len(counts) == len(values) and sum(counts):
            weights = np.asarray(counts, dtype=float) / sum(counts)
        picked = self.rng.choice(len(values), size=n, p=weights)
        return np.asarray(values, dtype=object)[picked]


def _placeholders(name: str, numbers: np.ndarray) -> pd.Series:
    return f"{name}_" + pd.Series(numbers, dtype="int64").astype("str")


def _naive(stamp: pd.Timestamp) -> pd.Timestamp:
    return stamp.tz_convert(None) if stamp.tzinfo is not None else stamp
