"""Tabular files in a dataset: which files are tables, and reading and writing them in chunks.

A file is a table by its name (case-insensitive): ``.csv`` and ``.tsv``, each optionally
``.gz``, and ``.parquet``. Text tables are read with pandas' defaults (a header row; ``,`` or a
tab), as a job's ``pd.read_csv`` would read them. Parquet needs ``pyarrow`` (a dependency of
c2d, pinned into the job image too); on a host installed without it a ``.parquet`` file raises
``ParquetUnavailable`` instead of being silently skipped.

Everything is chunked so a file larger than memory is read and written in bounded memory.
Files are opened without following symbolic links: a dataset is exactly the regular files under
its folder (as ``jobs.datasets`` hashes them). Written files are created exclusively, mode 0644,
so the unprivileged sandbox user can read them; gzip headers carry no time or name, so the same
frames give the same bytes.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from types import ModuleType
from typing import IO, Any, Literal

import pandas as pd

from jobs.errors import DatasetError
from ledger.kinds import ErrorKind

FileFormat = Literal["csv", "tsv", "parquet", "other"]
Compression = Literal["gzip"]

CHUNK_ROWS = 65_536
"""Rows per chunk when reading and writing; bounds memory to a few chunks of the widest file."""

_SUFFIXES: tuple[tuple[str, FileFormat, Compression | None], ...] = (
    (".csv.gz", "csv", "gzip"),
    (".tsv.gz", "tsv", "gzip"),
    (".csv", "csv", None),
    (".tsv", "tsv", None),
    (".parquet", "parquet", None),
)
_SEPARATORS = {"csv": ",", "tsv": "\t"}


class ParquetUnavailable(DatasetError):
    """A ``.parquet`` file was met on a host where ``pyarrow`` is not installed."""

    kind = ErrorKind.INVALID

    def __init__(self, path: str) -> None:
        super().__init__(
            f"{path}: reading and writing Parquet needs the pyarrow package, which is not "
            "installed here; install it (`pip install pyarrow`) or convert the file to CSV",
            path=path,
        )


def detect(name: str) -> tuple[FileFormat, Compression | None]:
    """The format and compression of a file, from its name; ``("other", None)`` if no table."""
    lower = name.lower()
    for suffix, fmt, compression in _SUFFIXES:
        if lower.endswith(suffix):
            return fmt, compression
    return "other", None


def _pyarrow_parquet(path: str) -> ModuleType:
    try:
        import pyarrow.parquet as pq  # optional: only Parquet needs it
    except ImportError:
        raise ParquetUnavailable(path) from None
    return pq


def open_nofollow(path: Path, rel: str) -> IO[bytes]:
    """Open a regular file for reading, refusing a symbolic link or anything not a file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise DatasetError(f"cannot read {rel}: {exc.strerror}", path=rel) from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise DatasetError(f"{rel} is not a regular file", path=rel)
    return os.fdopen(fd, "rb")


def parquet_rows(path: Path, rel: str) -> int:
    """The row count a Parquet file's footer records (exact, without reading the data)."""
    pq = _pyarrow_parquet(rel)
    with open_nofollow(path, rel) as handle:
        return int(pq.ParquetFile(handle).metadata.num_rows)


def read_chunks(
    path: Path,
    rel: str,
    fmt: FileFormat,
    compression: Compression | None,
    *,
    columns: Sequence[str] | None = None,
    as_text: Sequence[str] = (),
    max_rows: int | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[pd.DataFrame]:
    """Yield the table at ``path`` as frames of at most ``chunk_rows`` rows.

    ``columns`` limits the columns read; ``as_text`` names text-table columns to read as
    strings (pandas otherwise infers each chunk's types separately); ``max_rows`` stops early.
    Raises ``ParquetUnavailable``, ``DatasetError`` and pandas' own parse errors.
    """
    with open_nofollow(path, rel) as handle:
        if fmt == "parquet":
            yield from _parquet_chunks(handle, rel, columns, max_rows, chunk_rows)
            return
        reader = pd.read_csv(
            handle,
            sep=_SEPARATORS[fmt],
            compression=compression,
            usecols=list(columns) if columns is not None else None,
            dtype={name: "str" for name in as_text} or None,
            nrows=max_rows,
            chunksize=chunk_rows,
            # Each chunk is already bounded; the internal splitting would only add
            # mixed-type warnings within a chunk.
            low_memory=False,
        )
        with reader:
            yield from reader


def _parquet_chunks(
    handle: IO[bytes],
    rel: str,
    columns: Sequence[str] | None,
    max_rows: int | None,
    chunk_rows: int,
) -> Iterator[pd.DataFrame]:
    pq = _pyarrow_parquet(rel)
    table = pq.ParquetFile(handle)
    meta = table.schema_arrow.pandas_metadata or {}
    # An index pandas stored is not a column a job sees after `pd.read_parquet`.
    index = {c for c in meta.get("index_columns", []) if isinstance(c, str)}
    names = [n for n in table.schema_arrow.names if n not in index]
    wanted = [n for n in names if columns is None or n in columns]
    left = max_rows
    yielded = False
    for batch in table.iter_batches(batch_size=chunk_rows, columns=wanted):
        frame = batch.to_pandas()
        if left is not None:
            frame = frame.iloc[:left]
            left -= len(frame)
        yield frame
        yielded = True
        if left is not None and left <= 0:
            return
    if not yielded:  # no rows: still tell the columns, as pandas does for a header-only CSV
        yield table.schema_arrow.empty_table().select(wanted).to_pandas()


class TableWriter:
    """Writes one table chunk by chunk to a new file; use as a context manager.

    ``write`` takes frames with the same columns and dtypes each time. The file is created
    exclusively (never through a link) with mode 0644.
    """

    def __init__(self, path: Path, fmt: FileFormat, compression: Compression | None) -> None:
        if fmt == "other":
            raise ValueError("TableWriter writes tables only")
        self._fmt = fmt
        self._stack = ExitStack()
        self._first = True
        self._parquet: Any = None
        self._pq = _pyarrow_parquet(path.name) if fmt == "parquet" else None
        raw = self._stack.enter_context(create_file(path))
        self._raw = raw
        if fmt != "parquet":
            binary: IO[bytes] = raw
            if compression == "gzip":
                zipped = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)
                binary = self._stack.enter_context(zipped)  # type: ignore[arg-type]
            self._text = self._stack.enter_context(
                io.TextIOWrapper(binary, encoding="utf-8", newline="")
            )

    def write(self, frame: pd.DataFrame) -> None:
        """Append ``frame``'s rows (the first call also writes the header or schema)."""
        if self._fmt == "parquet":
            import pyarrow as pa  # present: _pyarrow_parquet succeeded

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._parquet is None:
                assert self._pq is not None
                self._parquet = self._pq.ParquetWriter(self._raw, table.schema)
            self._parquet.write_table(table)
        else:
            frame.to_csv(
                self._text,
                sep=_SEPARATORS[self._fmt],
                index=False,
                header=self._first,
                lineterminator="\n",
            )
        self._first = False

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._parquet is not None:
            self._parquet.close()
        self._stack.close()


def create_file(path: Path, mode: int = 0o644) -> IO[bytes]:
    """Create a new file for writing (never through a link, never over a file), at ``mode``."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, mode)
    os.fchmod(fd, mode)  # the umask must not narrow what the sandbox user may read
    return os.fdopen(fd, "wb")
