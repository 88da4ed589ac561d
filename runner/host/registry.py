"""What a data host keeps for itself: its datasets' folders, their hashes and profiles, its outbox.

Stored in ``host.db`` in the host's own state folder, beside its key; the control plane never
sees a path (it knows a dataset by name, digest, policy and the profile researchers may see).

- ``datasets``: name, the folder's real path, its owner, digest, size;
- ``file_cache``: each file's hash and the stat it was computed under (``jobs.datasets``), so a
  re-hash before every run reads only what changed;
- ``profiles``: the full profile made at registration (``jobs.schema_records.ProfileRecord``),
  which dry runs make their mock data from;
- ``outbox``: outcomes this host signed and could not deliver yet (the control plane did not
  answer); the agent sends them when it answers again.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs.datasets import CachedHash
from jobs.schema_records import ProfileRecord

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS datasets ("
    " name TEXT PRIMARY KEY, path TEXT NOT NULL, owner TEXT NOT NULL, digest TEXT NOT NULL,"
    " files INTEGER NOT NULL, bytes INTEGER NOT NULL, registered REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS file_cache ("
    " root TEXT NOT NULL, path TEXT NOT NULL, size INTEGER, mtime_ns INTEGER,"
    " ctime_ns INTEGER, inode INTEGER, sha256 TEXT, hashed_ns INTEGER,"
    " PRIMARY KEY (root, path))",
    "CREATE TABLE IF NOT EXISTS profiles (name TEXT PRIMARY KEY, record TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS outbox ("
    " job_id TEXT PRIMARY KEY, payload TEXT NOT NULL, created REAL NOT NULL)",
)


@dataclass(frozen=True)
class LocalDataset:
    """A dataset on this host: where it is, whose it is, what it hashed to."""

    name: str
    path: str
    owner: str
    digest: str
    files: int
    bytes: int
    registered: float


class Registry:
    """The host's ``host.db``; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA busy_timeout = 30000")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = FULL")
        self._lock = threading.RLock()
        for statement in _SCHEMA:
            self._conn.execute(statement)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    # -- datasets ---------------------------------------------------------------------------

    def put_dataset(
        self, dataset: LocalDataset, cache: dict[str, CachedHash], profile: ProfileRecord
    ) -> None:
        """Register (or replace) a dataset with its hash cache and profile, all at once."""
        with self._tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO datasets VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    dataset.name, dataset.path, dataset.owner, dataset.digest, dataset.files,
                    dataset.bytes, dataset.registered,
                ),
            )  # fmt: skip
            self._save_cache(conn, dataset.path, cache)
            conn.execute(
                "INSERT OR REPLACE INTO profiles VALUES (?, ?)",
                (dataset.name, profile.model_dump_json(exclude_none=True)),
            )

    def get_dataset(self, name: str) -> LocalDataset | None:
        rows = self._read("SELECT * FROM datasets WHERE name = ?", (name,))
        return LocalDataset(*rows[0]) if rows else None

    def list_datasets(self) -> list[LocalDataset]:
        return [LocalDataset(*r) for r in self._read("SELECT * FROM datasets ORDER BY name")]

    def profile(self, name: str) -> ProfileRecord | None:
        rows = self._read("SELECT record FROM profiles WHERE name = ?", (name,))
        return ProfileRecord.model_validate_json(rows[0][0]) if rows else None

    # -- the hash cache ---------------------------------------------------------------------

    def file_cache(self, root: str) -> dict[str, CachedHash]:
        rows = self._read(
            "SELECT path, size, mtime_ns, ctime_ns, inode, sha256, hashed_ns FROM file_cache"
            " WHERE root = ?",
            (root,),
        )
        return {r[0]: CachedHash(*r[1:]) for r in rows}

    def save_file_cache(self, root: str, cache: dict[str, CachedHash]) -> None:
        with self._tx() as conn:
            self._save_cache(conn, root, cache)

    @staticmethod
    def _save_cache(conn: sqlite3.Connection, root: str, cache: dict[str, CachedHash]) -> None:
        conn.execute("DELETE FROM file_cache WHERE root = ?", (root,))
        conn.executemany(
            "INSERT INTO file_cache VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (root, path, c.size, c.mtime_ns, c.ctime_ns, c.inode, c.sha256, c.hashed_ns)
                for path, c in cache.items()
            ],
        )

    # -- the outbox -------------------------------------------------------------------------

    def keep(self, job_id: str, payload: dict[str, Any]) -> None:
        """Keep an undelivered outcome (replacing an older one of the same job)."""
        with self._tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO outbox VALUES (?, ?, ?)",
                (job_id, json.dumps(payload, sort_keys=True), time.time()),
            )

    def kept(self, job_id: str | None = None) -> dict[str, dict[str, Any]]:
        """Undelivered outcomes by job id (all, or the one of ``job_id``)."""
        sql, params = "SELECT job_id, payload FROM outbox", tuple[str, ...]()
        if job_id is not None:
            sql, params = sql + " WHERE job_id = ?", (job_id,)
        return {r[0]: json.loads(r[1]) for r in self._read(sql, params)}

    def delivered(self, job_id: str) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM outbox WHERE job_id = ?", (job_id,))
