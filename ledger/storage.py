"""The ledger's tables in SQLite, and the tree reads that proofs are built from.

Tables (all prefixed ``ledger_`` so they can live in another component's database):

- ``ledger_state``: one row holding the size, the head hash (the last entry's hash, 32 zero
  bytes when empty) and the compact frontier. Sequence numbers come from here, never from a
  rowid, and every append reads and rewrites it inside ``BEGIN IMMEDIATE``, so concurrent
  writers in several processes serialize on it.
- ``ledger_entries``: ``seq``, the entry hash, ``type`` and ``subject`` (for lookups), the
  canonical bytes, and ``nodes``: the hashes of the perfect subtrees that appending this entry
  completed, level 1 first (n - 1 hashes over n entries, one per entry on average). Keeping
  them in the entry's own row costs no extra page per commit, and the subtree ``(level, i)``
  is found by primary key: it was completed by entry ``((i + 1) << level) - 1``.
- ``ledger_checkpoints``: every signed checkpoint note, by size.
- ``ledger_meta``: schema version, origin and public key of the log.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

from ledger.errors import LedgerConflict
from ledger.merkle import HASH_SIZE, Frontier, leaf_hash, node_hash

SCHEMA_VERSION = "1"
EMPTY_HEAD = bytes(32)

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ledger_state (id INTEGER PRIMARY KEY CHECK (id = 1),"
    " size INTEGER NOT NULL, head BLOB NOT NULL, frontier BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ledger_entries (seq INTEGER PRIMARY KEY, hash BLOB NOT NULL,"
    " type TEXT NOT NULL, subject TEXT NOT NULL, canonical BLOB NOT NULL, nodes BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ledger_entries_by_subject ON ledger_entries (subject, seq)",
    "CREATE TABLE IF NOT EXISTS ledger_checkpoints (size INTEGER PRIMARY KEY, note TEXT NOT NULL)",
    "INSERT OR IGNORE INTO ledger_state (id, size, head, frontier)"
    " VALUES (1, 0, zeroblob(32), x'')",
    f"INSERT OR IGNORE INTO ledger_meta (key, value) VALUES ('schema_version', '{SCHEMA_VERSION}')",
)


def connect(path: Path | str) -> sqlite3.Connection:
    """Open a connection the way every ledger user must: autocommit, WAL, synchronous=FULL.

    Transactions are explicit (``BEGIN IMMEDIATE`` ... ``COMMIT``); ``busy_timeout`` makes a
    writer wait up to 30 s for another writer instead of failing at once.
    """
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def init_schema(conn: sqlite3.Connection) -> None:
    """Create the ledger's tables if missing; idempotent and safe inside a caller's transaction.

    Statements run one by one (never ``executescript``, which would commit the caller's
    transaction).
    """
    for statement in _SCHEMA:
        conn.execute(statement)
    row = conn.execute("SELECT value FROM ledger_meta WHERE key = 'schema_version'").fetchone()
    if row[0] != SCHEMA_VERSION:
        raise LedgerConflict(
            f"the ledger tables use schema version {row[0]}, this code reads {SCHEMA_VERSION}; "
            "upgrade c2d before opening this database"
        )


def read_state(conn: sqlite3.Connection) -> tuple[int, bytes, Frontier]:
    """The log's size, head hash and frontier from the state row."""
    row = conn.execute("SELECT size, head, frontier FROM ledger_state WHERE id = 1").fetchone()
    if row is None:
        raise LedgerConflict("the ledger tables are missing their state row; run init_schema")
    size, head, blob = row
    return size, head, Frontier.from_bytes(size, blob)


def write_appended(
    conn: sqlite3.Connection,
    rows: list[tuple[int, bytes, str, str, bytes, bytes]],
    state: tuple[int, bytes, bytes],
) -> None:
    """Insert entry rows and move the state row; the caller owns the transaction."""
    conn.executemany(
        "INSERT INTO ledger_entries (seq, hash, type, subject, canonical, nodes)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.execute("UPDATE ledger_state SET size = ?, head = ?, frontier = ? WHERE id = 1", state)


def get_meta(conn: sqlite3.Connection, key: str) -> str | None:
    """One value of ``ledger_meta``."""
    row = conn.execute("SELECT value FROM ledger_meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    """Record a value of ``ledger_meta`` unless one is already there."""
    conn.execute("INSERT OR IGNORE INTO ledger_meta (key, value) VALUES (?, ?)", (key, value))


def checkpoints(conn: sqlite3.Connection) -> list[tuple[int, str]]:
    """Every stored checkpoint as ``(size, note)``, smallest first."""
    return conn.execute("SELECT size, note FROM ledger_checkpoints ORDER BY size").fetchall()


def latest_checkpoint(conn: sqlite3.Connection) -> tuple[int, str] | None:
    """The stored checkpoint with the largest size."""
    row = conn.execute(
        "SELECT size, note FROM ledger_checkpoints ORDER BY size DESC LIMIT 1"
    ).fetchone()
    return None if row is None else (row[0], row[1])


def store_checkpoint(conn: sqlite3.Connection, size: int, note: str) -> None:
    """Keep a signed checkpoint; signing is deterministic, so a second copy is the same."""
    conn.execute(
        "INSERT OR IGNORE INTO ledger_checkpoints (size, note) VALUES (?, ?)", (size, note)
    )


class StoredTree:
    """Merkle tree reads answered from the subtree hashes stored with the entries.

    Any range the RFC's proof recursion asks for splits into O(log n) aligned perfect
    subtrees, each one indexed lookup, so proofs and past roots need no rebuild.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def perfect(self, level: int, index: int) -> bytes:
        """Hash of the perfect subtree covering leaves [index << level, (index + 1) << level)."""
        completed_by = ((index + 1) << level) - 1
        row = self._conn.execute(
            "SELECT canonical, nodes FROM ledger_entries WHERE seq = ?", (completed_by,)
        ).fetchone()
        if row is None:
            raise LedgerConflict(f"entry {completed_by} is missing; run `python -m ledger verify`")
        if level == 0:
            return leaf_hash(row[0])
        value = bytes(row[1][(level - 1) * HASH_SIZE : level * HASH_SIZE])
        if len(value) != HASH_SIZE:
            raise LedgerConflict(
                f"entry {completed_by} lacks its level-{level} tree node; "
                "run `python -m ledger verify`"
            )
        return value

    def pieces(self, lo: int, hi: int) -> Iterable[tuple[int, int]]:
        """Split [lo, hi) into aligned perfect subtrees, left to right, as (level, index)."""
        while lo < hi:
            level = (hi - lo).bit_length() - 1
            while lo & ((1 << level) - 1):
                level -= 1
            yield level, lo >> level
            lo += 1 << level

    def subtree(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi]) for the ranges RFC 9162's recursion produces (lo aligned enough)."""
        hashes = [self.perfect(level, index) for level, index in self.pieces(lo, hi)]
        result = hashes[-1]
        for left in reversed(hashes[:-1]):
            result = node_hash(left, result)
        return result

    def frontier(self, size: int) -> Frontier:
        """The frontier of the tree at a past ``size``, from stored subtrees."""
        return Frontier(size, [self.perfect(lv, ix) for lv, ix in self.pieces(0, size)])
