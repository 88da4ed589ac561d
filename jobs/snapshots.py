"""Consistent copies of the state database, taken while other processes may be using it.

The store and the ledger share one WAL-mode SQLite file. Copying that file with ``cp`` while
the API writes can catch half a transaction, or leave the newest commits behind in the
``-wal`` file; SQLite's online backup API reads one snapshot under a read transaction instead,
and writers go on meanwhile. ``copy_database`` is that copy, made into a single file that
needs no ``-wal`` beside it; ``c2d backup`` and the snapshot before a migration both use it.

A migration rewrites tables in place. If it, or the code that follows it, turns out wrong, the
operator needs the file as it was, so ``snapshot_before_migration`` keeps a copy beside the
database before the store migrates an older schema, and says where.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from pathlib import Path

from jobs.migrations import LATEST, schema_version

log = logging.getLogger(__name__)


def fsync_path(path: Path) -> None:
    """Flush a file or a folder to disk (a rename is durable only once its folder is)."""
    flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def settle(path: Path) -> None:
    """Make the database at ``path`` one self-contained file: journal mode DELETE (which
    folds any ``-wal`` into it), flushed to disk."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    try:
        mode = conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
    finally:
        conn.close()
    if str(mode).lower() != "delete":
        raise sqlite3.OperationalError(f"{path} stayed in journal mode {mode}")
    fsync_path(path)


def copy_database(source: Path, target: Path) -> None:
    """Copy the SQLite database ``source`` to the new file ``target`` with the backup API.

    The copy is one snapshot of ``source`` (taken in a single step, so writers in other
    processes neither block it nor make it start over), written under a temporary name beside
    ``target``, settled into one file and linked into place: ``target`` is the whole copy or
    absent, and a file already there is never replaced. Raises ``FileExistsError`` when
    ``target`` exists.
    """
    if target.exists():
        raise FileExistsError(f"{target} exists; a copy is never written over another file")
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    partial.unlink(missing_ok=True)
    src = sqlite3.connect(str(source), isolation_level=None, timeout=30)
    try:
        src.execute("PRAGMA busy_timeout=30000")
        dst = sqlite3.connect(str(partial), isolation_level=None)
        try:
            src.backup(dst)
        finally:
            dst.close()
        settle(partial)
        os.link(partial, target)
        fsync_path(target.parent)
    finally:
        src.close()
        partial.unlink(missing_ok=True)


def snapshot_name(db_path: Path, version: int, now: float) -> Path:
    """Where the copy of ``db_path`` at schema ``version`` taken at ``now`` goes."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    return db_path.with_name(f"{db_path.name}.schema-v{version}.{stamp}.bak")


def snapshot_before_migration(
    conn: sqlite3.Connection, db_path: Path, *, now: float | None = None
) -> Path | None:
    """If the database holds an older schema than this code's, copy it beside itself first.

    Returns the copy's path (and logs it), or None when there is nothing to migrate (a new
    file, or one already at ``LATEST``). A newer schema is left to ``migrate`` to refuse.
    """
    version = schema_version(conn)
    if not 0 < version < LATEST:
        return None
    target = snapshot_name(db_path, version, time.time() if now is None else now)
    try:
        copy_database(db_path, target)
    except FileExistsError:  # another process opening the same file this second made it
        return target
    copied = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
    try:
        taken_at = schema_version(copied)
    finally:
        copied.close()
    if taken_at != version:  # another process migrated it meanwhile: this is no "before"
        target.unlink()
        return None
    log.warning(
        "the state database %s is at schema version %d and is being migrated to %d; a copy of "
        "it as it was is at %s (to go back: stop c2d, put that copy in its place, delete the "
        "-wal and -shm files beside it and run the c2d version that wrote it)",
        db_path,
        version,
        LATEST,
        target,
    )
    return target
