"""Dataset profiles: the shape of a dataset's tables, and how much of it each person may see.

``profile_dataset(root)`` reads every table (``jobs.tabular`` says which files are tables) in
bounded memory and returns a ``DatasetProfile``: per file its path, format, size and row count,
and per column its name, type (``integer``, ``float``, ``boolean``, ``string``, ``category``,
``datetime``), whether it has nulls, whether every value is distinct (``key``), and statistics.
Other files are listed by path and size only.

What a profile never holds: a string value of the data. Statistics of strings are lengths and
distinct counts. The one exception is a column the owner declares public (``PublicValues``,
``{file: [column, ...]}``, ``"*"`` for every file): its values, up to 1,000 of them, are kept so
researchers and mock data can use the real categories.

Levels (``DatasetPolicy.schema_view``), applied by ``DatasetProfile.redacted`` and ``view``:

=========  ===================================================================================
hidden     file paths, formats and sizes: a job cannot open a file it cannot name, and the
           sandbox shows the names to any job anyway. No columns, no row counts.
columns    plus row counts and, per column, name, type, nullable, key, date-only, categorical,
           and the values of public columns. No statistic, no value.
stats      plus null and distinct counts, string length ranges, min/max/mean/std of numbers
           (the true fraction of booleans), min/max of datetimes, counts of public values.
           min and max are real observed values: a policy of ``stats`` publishes them.
           Integer key columns (identifiers) keep their range and moments hidden even here,
           since min and max would be two real identifiers.
=========  ===================================================================================

Owners see the whole profile. A redacted profile is still a ``DatasetProfile`` (withheld fields
are ``None``), so a view can be parsed back and mock data made from it alone.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import (
    BaseModel,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)

from jobs.errors import DatasetError
from jobs.fields import FROZEN, SCHEMA_VERSION, RelativePattern
from jobs.profile_stats import ColumnSummary
from jobs.tabular import CHUNK_ROWS, FileFormat, detect, parquet_rows, read_chunks

Level = Literal["hidden", "columns", "stats"]
Dtype = Literal["integer", "float", "boolean", "string", "category", "datetime"]
Scalar = StrictInt | StrictFloat | StrictStr
PublicValues = Mapping[str, Collection[str]]
"""Columns whose values the owner publishes: ``{file path or "*": [column name, ...]}``."""

LEVELS: tuple[Level, ...] = ("hidden", "columns", "stats")
_STATS_FIELDS = frozenset(
    {"nulls", "distinct", "distinct_exact", "min", "max", "mean", "std"}
    | {"min_length", "max_length", "counts"}
)


def is_public(public: PublicValues | None, path: str, column: str) -> bool:
    """Whether the owner declared ``column`` of file ``path`` public."""
    if not public:
        return False
    return column in public.get(path, ()) or column in public.get("*", ())


class ColumnProfile(BaseModel):
    """One column. Fields after ``values`` are statistics, ``None`` when withheld."""

    model_config = FROZEN

    name: str
    dtype: Dtype
    nullable: bool
    key: StrictBool = False
    date_only: StrictBool = False
    categorical: StrictBool = False
    values: tuple[Scalar, ...] | None = None
    nulls: int | None = Field(default=None, ge=0)
    distinct: int | None = Field(default=None, ge=0)
    distinct_exact: bool | None = None
    min: Scalar | None = None
    max: Scalar | None = None
    mean: float | None = Field(default=None, allow_inf_nan=False)
    std: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    min_length: int | None = Field(default=None, ge=0)
    max_length: int | None = Field(default=None, ge=0)
    counts: tuple[int, ...] | None = None

    def redacted(self, level: Level, public: bool) -> ColumnProfile:
        """This column as ``level`` shows it; ``public`` keeps the owner-published values."""
        drop: set[str] = set() if public else {"values", "counts"}
        if level != "stats":
            drop |= _STATS_FIELDS
        elif self.key and self.dtype == "integer":
            drop |= {"min", "max", "mean", "std"}
        return self.model_copy(update=dict.fromkeys(drop))


class FileProfile(BaseModel):
    """One file. ``rows`` is exact when ``rows_exact``, else a lower bound (profiling
    stopped early); ``scanned`` rows fed the statistics. ``problem`` says why a table could
    not be read (its columns are then ``None``)."""

    model_config = FROZEN

    path: RelativePattern
    format: FileFormat
    compression: Literal["gzip"] | None = None
    bytes: int = Field(ge=0)
    rows: int | None = Field(default=None, ge=0)
    rows_exact: bool | None = None
    scanned: int | None = Field(default=None, ge=0)
    columns: tuple[ColumnProfile, ...] | None = None
    problem: str | None = None

    @model_validator(mode="after")
    def _unique_columns(self) -> FileProfile:
        names = [c.name for c in self.columns or ()]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.path}: column names must be unique")
        return self

    def redacted(self, level: Level, public: PublicValues | None) -> FileProfile:
        """This file as ``level`` shows it."""
        if level == "hidden":
            return FileProfile(
                path=self.path, format=self.format, compression=self.compression, bytes=self.bytes
            )
        columns = None
        if self.columns is not None:
            columns = tuple(
                c.redacted(level, is_public(public, self.path, c.name)) for c in self.columns
            )
        return self.model_copy(update={"columns": columns})


class DatasetProfile(BaseModel):
    """The profile of a whole dataset; ``redacted_to`` is ``None`` for the full profile."""

    model_config = FROZEN

    schema_version: Literal[1] = SCHEMA_VERSION
    redacted_to: Level | None = None
    files: tuple[FileProfile, ...]

    @model_validator(mode="after")
    def _unique_files(self) -> DatasetProfile:
        paths = [f.path for f in self.files]
        if len(set(paths)) != len(paths):
            raise ValueError("file paths must be unique")
        return self

    def redacted(self, level: Level, public: PublicValues | None = None) -> DatasetProfile:
        """What ``level`` shows; only the columns in ``public`` keep their values.

        Redacting never adds back what an earlier redaction removed."""
        if self.redacted_to is not None:
            level = min(level, self.redacted_to, key=LEVELS.index)
        files = tuple(f.redacted(level, public) for f in self.files)
        return DatasetProfile(redacted_to=level, files=files)

    def view(
        self, level: Level, *, is_owner: bool, public: PublicValues | None = None
    ) -> dict[str, Any]:
        """The JSON document a person may see: owners the whole profile, others ``level``.

        Withheld fields are left out; ``DatasetProfile.model_validate`` reads it back."""
        shown = self if is_owner else self.redacted(level, public)
        return shown.model_dump(mode="json", exclude_none=True)


def profile_dataset(
    root: Path,
    *,
    public: PublicValues | None = None,
    max_rows_scanned: int | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> DatasetProfile:
    """Profile every file under ``root`` (see the module docstring for what is kept).

    ``max_rows_scanned`` bounds the work per table: statistics then cover the first rows
    only, and text tables report that many rows as a lower bound. ``chunk_rows`` rows are
    read at a time (memory grows with it and the number of columns, not with the file).

    Raises ``DatasetError`` for a missing folder or a link, device or fifo inside, and
    ``ParquetUnavailable`` for a ``.parquet`` file when pyarrow is not installed.
    A table pandas cannot parse is listed with a ``problem`` instead.
    """
    if max_rows_scanned is not None and max_rows_scanned < 0:
        raise ValueError("max_rows_scanned must be at least 0")
    folder = root.resolve()
    if not folder.is_dir():
        raise DatasetError(f"{root} is not a folder; pass the dataset's folder", path=str(root))
    files = []
    for rel, size in _walk(folder):
        fmt, compression = detect(rel)
        entry = FileProfile(path=rel, format=fmt, compression=compression, bytes=size)
        if fmt != "other":
            table = _profile_table(
                folder / rel, rel, fmt, compression, public, max_rows_scanned, chunk_rows
            )
            entry = entry.model_copy(update=table)
        files.append(entry)
    return DatasetProfile(files=tuple(files))


def _walk(folder: Path) -> list[tuple[str, int]]:
    """Every regular file under ``folder`` as (relative path, size), sorted; links refused."""
    found: list[tuple[str, int]] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        base = Path(dirpath)
        for name in sorted(dirnames + filenames):
            rel = (base / name).relative_to(folder).as_posix()
            st = os.lstat(base / name)
            if stat.S_ISDIR(st.st_mode):
                continue
            if not stat.S_ISREG(st.st_mode):
                raise DatasetError(
                    f"{rel} is not a regular file; a dataset may hold only files and folders",
                    path=rel,
                )
            found.append((rel, st.st_size))
    return sorted(found)


def _profile_table(
    path: Path,
    rel: str,
    fmt: FileFormat,
    compression: Literal["gzip"] | None,
    public: PublicValues | None,
    max_rows: int | None,
    chunk_rows: int,
) -> dict[str, Any]:
    """The row and column fields of a table's ``FileProfile``, or its ``problem``."""
    text = fmt != "parquet"
    try:
        summaries, scanned, exact = _pass(
            path, rel, fmt, compression, public, max_rows, (), chunk_rows
        )
        redo = [s.name for s in summaries.values() if s.conflict]
        if redo:
            # pandas typed some chunks of these columns differently: read them as text.
            again, _, _ = _pass(path, rel, fmt, compression, public, max_rows, redo, chunk_rows)
            summaries |= again
    except _Unreadable as exc:
        return {"problem": _problem(exc.__cause__, text)}
    rows = parquet_rows(path, rel) if not text else scanned
    columns = tuple(ColumnProfile(**s.result()) for s in summaries.values())
    return {
        "rows": rows,
        "rows_exact": exact or not text,
        "scanned": scanned,
        "columns": columns,
    }


def _pass(
    path: Path,
    rel: str,
    fmt: FileFormat,
    compression: Literal["gzip"] | None,
    public: PublicValues | None,
    max_rows: int | None,
    as_text: Sequence[str],
    chunk_rows: int,
) -> tuple[dict[str, ColumnSummary], int, bool]:
    """One pass over a table: (summaries by column, rows scanned, whether that is all rows).

    With ``as_text``, only those columns are read, as strings."""
    text = fmt != "parquet"
    summaries: dict[str, ColumnSummary] = {}
    scanned, exact = 0, True
    # One row past the limit tells whether the limit cut the table short.
    limit = None if max_rows is None else max_rows + 1
    chunks = read_chunks(
        path,
        rel,
        fmt,
        compression,
        columns=as_text or None,
        as_text=as_text,
        max_rows=limit,
        chunk_rows=chunk_rows,
    )
    for chunk in _guarded(chunks):
        if max_rows is not None and scanned + len(chunk) > max_rows:
            chunk, exact = chunk.iloc[: max_rows - scanned], False
        if not summaries:
            for name in chunk.columns:
                summaries[str(name)] = ColumnSummary(
                    str(name), text_format=text, public=is_public(public, rel, str(name))
                )
        for name, summary in zip(chunk.columns, summaries.values(), strict=True):
            summary.add(chunk[name])
        scanned += len(chunk)
    return summaries, scanned, exact


class _Unreadable(Exception):
    """pandas or pyarrow could not read the table (the cause says why)."""


def _guarded(chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """The chunks, with a read failure (never a failure of our own code) as ``_Unreadable``."""
    try:
        yield from chunks
    except (ValueError, OSError) as exc:  # pandas' and pyarrow's parse errors are ValueErrors
        raise _Unreadable() from exc


def _problem(exc: BaseException | None, text: bool) -> str:
    # Parser messages can quote the data, so the reason is named, never the message passed on.
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text; save it as UTF-8"
    if isinstance(exc, pd.errors.EmptyDataError):
        return "empty: no header row"
    if isinstance(exc, OSError) and exc.strerror:
        return f"could not be read ({exc.strerror})"
    kind = "CSV/TSV (rows with different numbers of fields, or bad quoting)" if text else "Parquet"
    return f"could not be parsed as {kind}"
