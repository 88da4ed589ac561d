"""The Ledger: appends, proofs, signed checkpoints and receipts over one SQLite file."""

from __future__ import annotations

import base64
import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import merkle, storage
from ledger.actors import KEY_TYPES
from ledger.checkpoint import (
    Checkpoint,
    check_key_name,
    open_checkpoint,
    parse_checkpoint_text,
    parse_note,
    sign_checkpoint,
)
from ledger.entry import Entry, utc_timestamp
from ledger.errors import (
    InconsistentLog,
    LedgerConflict,
    LedgerError,
    NotFound,
    NotInTransaction,
    VerificationError,
)
from ledger.keys import load_or_create_signing_key, raw_public_key
from ledger.publication import REGISTERED, bound_dataset, publication_of
from ledger.receipt import build_receipt, verify_receipt
from ledger.storage import EMPTY_HEAD, StoredTree, read_state
from ledger.verify import Problem, VerifyReport, scan, verify_log

Record = tuple[str, str, str, Mapping[str, Any]]
"""What one append needs: ``(type, actor, subject, body)``."""


class Ledger:
    """A hash-chained, Merkle-proved, signed log stored in SQLite.

    Safe to share between threads (one connection per thread) and to open from several
    processes at once (writers serialize on ``BEGIN IMMEDIATE``). The signing key at
    ``key_path`` is created on first use. A database file belongs to one origin and one key;
    opening it with another raises LedgerConflict.

    ``on_append``, when set, is told after each append how many entries it wrote and how long
    writing them took in seconds (hashing, the tree, the rows; not the caller's commit): the
    control plane's ``/metrics`` observes it. It must be quick and must not raise.
    """

    on_append: Callable[[int, float], None] | None = None

    def __init__(
        self,
        db_path: Path,
        key_path: Path,
        origin: str,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.db_path = Path(db_path)
        self.origin = check_key_name(origin)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._local = threading.local()
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        try:
            self._key = self._open(Path(key_path))
        except BaseException:
            self.close()
            raise
        self._public = raw_public_key(self._key)

    def _open(self, key_path: Path) -> Ed25519PrivateKey:
        with self._write() as conn:
            storage.init_schema(conn)
            signed_before = storage.get_meta(conn, "public_key") is not None
        if signed_before and not key_path.exists():
            # Creating a fresh key here would only make the loss permanent.
            raise LedgerConflict(
                f"the signing key of {self.db_path} is missing from {key_path}; put the key "
                "file back (a copy of it, or `c2d restore` of a backup made with `c2d backup "
                "--include-key`); a new key cannot continue this log"
            )
        key = load_or_create_signing_key(key_path)
        with self._write() as conn:
            self._claim(conn, raw_public_key(key))
        return key

    @staticmethod
    def init_schema(conn: sqlite3.Connection) -> None:
        """Create the ``ledger_*`` tables in ``conn``'s database if missing (idempotent)."""
        storage.init_schema(conn)

    # -- connections -------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if os.getpid() != self._pid:
            # A forked child must not touch its parent's SQLite handles; start afresh.
            self._local = threading.local()
            self._connections = []
            self._pid = os.getpid()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = storage.connect(self.db_path)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        conn = self._connection()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")

    def close(self) -> None:
        """Close every connection this ledger opened (in any thread)."""
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections = []
        self._local = threading.local()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _claim(self, conn: sqlite3.Connection, public_key: bytes) -> None:
        mine = {"origin": self.origin, "public_key": base64.b64encode(public_key).decode()}
        for key, value in mine.items():
            storage.set_meta(conn, key, value)
            stored = storage.get_meta(conn, key)
            if stored != value:
                raise LedgerConflict(
                    f"{self.db_path} is the ledger of {key} {stored!r}, not {value!r}; open it "
                    "with the origin and signing key it was created with"
                )

    # -- appending -----------------------------------------------------------------------

    def append(
        self,
        type: str,
        actor: str,
        subject: str,
        body: Mapping[str, Any],
        *,
        conn: sqlite3.Connection | None = None,
    ) -> Entry:
        """Append one entry and return it.

        Without ``conn`` the append is its own durable transaction. With ``conn`` the caller
        must already hold ``BEGIN IMMEDIATE`` on it; the entry is written in that transaction
        and commits or rolls back with the caller's own changes.
        """
        return self.append_many([(type, actor, subject, body)], conn=conn)[0]

    def append_many(
        self, records: Iterable[Record], *, conn: sqlite3.Connection | None = None
    ) -> list[Entry]:
        """Append ``(type, actor, subject, body)`` records in one transaction, all or none."""
        if conn is None:
            with self._write() as own:
                return self._timed_append(own, records)
        if not conn.in_transaction:
            raise NotInTransaction(
                "append(conn=...) needs the caller's open transaction: run BEGIN IMMEDIATE on "
                "the connection first, or leave conn out"
            )
        return self._timed_append(conn, records)

    def _timed_append(self, conn: sqlite3.Connection, records: Iterable[Record]) -> list[Entry]:
        start = time.perf_counter()
        entries = self._append_in(conn, records)
        if self.on_append is not None and entries:
            self.on_append(len(entries), time.perf_counter() - start)
        return entries

    def _append_in(self, conn: sqlite3.Connection, records: Iterable[Record]) -> list[Entry]:
        size, head, frontier = read_state(conn)
        prev = head.hex()
        entries: list[Entry] = []
        rows: list[tuple[int, bytes, str, str, bytes, bytes]] = []
        for type_, actor, subject, body in records:
            entry = Entry.create(
                seq=size,
                prev=prev,
                time=utc_timestamp(self._clock()),
                type=type_,
                actor=actor,
                subject=subject,
                body=dict(body),
            )
            data = entry.canonical_bytes()
            head = hashlib.sha256(data).digest()
            completed = frontier.append(merkle.leaf_hash(data))
            rows.append((size, head, type_, subject, data, b"".join(h for _, _, h in completed)))
            entries.append(entry)
            prev = head.hex()
            size += 1
        if rows:
            storage.write_appended(conn, rows, (size, head, frontier.to_bytes()))
        return entries

    # -- reading -------------------------------------------------------------------------

    def entries(self, start: int = 0, limit: int | None = None) -> list[Entry]:
        """Entries from seq ``start`` on, at most ``limit`` of them."""
        rows = self._connection().execute(
            "SELECT canonical FROM ledger_entries WHERE seq >= ? ORDER BY seq LIMIT ?",
            (start, -1 if limit is None else limit),
        )
        return [Entry.from_canonical(row[0], trusted=True) for row in rows]

    def entries_for(self, subject: str) -> list[Entry]:
        """Every entry about ``subject``, in seq order."""
        rows = self._connection().execute(
            "SELECT canonical FROM ledger_entries WHERE subject = ? ORDER BY seq", (subject,)
        )
        return [Entry.from_canonical(row[0], trusted=True) for row in rows]

    def size(self) -> int:
        """How many entries the log holds."""
        return read_state(self._connection())[0]

    def public_key(self) -> bytes:
        """The raw 32-byte Ed25519 public key that verifies this log's checkpoints."""
        return self._public

    def root(self, size: int | None = None) -> bytes:
        """The RFC 9162 tree head at ``size`` (default: now)."""
        conn = self._connection()
        current, _, frontier = read_state(conn)
        if size is None or size == current:
            return frontier.root()
        _check_size(size, current)
        return StoredTree(conn).subtree(0, size) if size else merkle.EMPTY_ROOT

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """Audit path of entry ``index`` in the tree of ``size`` entries, from storage."""
        conn = self._connection()
        _check_size(size, read_state(conn)[0])
        if not 0 <= index < size:
            raise NotFound(f"entry {index} is not in a tree of {size} entries")
        return merkle.inclusion_proof(index, size, StoredTree(conn).subtree)

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        """Proof that the tree of ``size2`` entries extends the tree of ``size1``."""
        conn = self._connection()
        _check_size(size2, read_state(conn)[0])
        if not 0 < size1 <= size2:
            raise NotFound(f"there is no consistency proof from size {size1} to {size2}")
        return merkle.consistency_proof(size1, size2, StoredTree(conn).subtree)

    # -- checkpoints ---------------------------------------------------------------------

    def latest_checkpoint(self) -> str | None:
        """The signed note of the largest checkpoint stored, if any."""
        latest = storage.latest_checkpoint(self._connection())
        return None if latest is None else latest[1]

    def checkpoint(self) -> str:
        """Sign the current tree head and store it; return the signed note.

        Returns the latest stored checkpoint when it already covers the head. Before signing,
        checks that the log still extends the last checkpoint signed (a consistency proof
        from storage) and re-verifies every entry appended since; refuses with
        InconsistentLog otherwise, so the key never signs a rewritten or truncated history.
        """
        with self._snapshot() as conn:
            size, head, frontier = read_state(conn)
            root = frontier.root()
            start, start_frontier, start_head = 0, merkle.Frontier(), EMPTY_HEAD
            latest = storage.latest_checkpoint(conn)
            if latest is not None:
                signed = self._open_own(latest[1])
                if signed.size == size and signed.root == root:
                    return latest[1]
                self._check_extends(conn, signed, size, root)
                start = signed.size
                start_frontier = StoredTree(conn).frontier(start)
                if start:
                    row = conn.execute(
                        "SELECT hash FROM ledger_entries WHERE seq = ?", (start - 1,)
                    ).fetchone()
                    start_head = bytes(row[0])
            try:
                count, computed, last = scan(conn, start, start_frontier, start_head, {})
            except Problem as problem:
                raise self._refusal(problem.detail) from None
            if (count, last, computed.root()) != (size, head, root):
                raise self._refusal("the state row disagrees with the stored entries")
        note = sign_checkpoint(Checkpoint(self.origin, size, root), self._key)
        storage.store_checkpoint(self._connection(), size, note)
        return note

    def _open_own(self, note: str) -> Checkpoint:
        try:
            return open_checkpoint(note, self._public, self.origin)
        except LedgerError as exc:
            raise self._refusal(f"the last stored checkpoint is not ours: {exc}") from None

    def _check_extends(
        self, conn: sqlite3.Connection, signed: Checkpoint, size: int, root: bytes
    ) -> None:
        if signed.size > size:
            raise self._refusal(
                f"the last signed checkpoint covers {signed.size} entries but the log holds "
                f"{size}: entries {size}..{signed.size - 1} were removed"
            )
        if signed.size == 0:
            return
        try:
            proof = merkle.consistency_proof(signed.size, size, StoredTree(conn).subtree)
            merkle.verify_consistency(signed.size, size, signed.root, root, proof)
        except (VerificationError, LedgerConflict) as exc:
            raise self._refusal(
                f"the log at size {size} does not extend the checkpoint signed at size "
                f"{signed.size}: {exc}"
            ) from None

    def _refusal(self, why: str) -> InconsistentLog:
        return InconsistentLog(
            f"refusing to sign a checkpoint: {why}. Run `python -m ledger verify "
            f"{self.db_path}` to find the first bad entry, then stop c2d and bring back the "
            "state folder from the newest backup that verifies (`c2d restore DIR` into an "
            "empty folder checks it; `c2d backup DIR` makes one)"
        )

    # -- receipts and verification -------------------------------------------------------

    def receipt(self, subject: str) -> dict[str, Any]:
        """A ``c2d-receipt/2`` document for every entry about ``subject``, with the key
        entries their signatures rely on (``key_entries_for``) and, for a job, the
        ``dataset.registered`` entry of the data it ran on (``ledger.publication``).

        Uses the latest checkpoint if it covers them, else signs a new one. The receipt is
        verified with the log's key before it is returned.
        """
        conn = self._connection()
        rows = conn.execute(
            "SELECT seq, canonical FROM ledger_entries WHERE subject = ? ORDER BY seq",
            (subject,),
        ).fetchall()
        if not rows:
            raise NotFound(f"the ledger has no entries about {subject!r}; check the id")
        latest = storage.latest_checkpoint(conn)
        note = latest[1] if latest is not None and latest[0] > rows[-1][0] else self.checkpoint()
        size = parse_checkpoint_text(parse_note(note)[0]).size
        tree = StoredTree(conn)
        items = [
            (seq, bytes(data), merkle.inclusion_proof(seq, size, tree.subtree))
            for seq, data in rows
        ]
        entries = [Entry.from_canonical(bytes(data), trusted=True) for _, data in rows]
        published = self._publication(conn, entries)
        dataset = None
        if published is not None:
            proof = merkle.inclusion_proof(published.seq, size, tree.subtree)
            dataset = (published.seq, published.canonical_bytes(), proof)
            entries = [*entries, published]  # the keys of its signers go in too
        keys = [
            (
                entry.seq,
                entry.canonical_bytes(),
                merkle.inclusion_proof(entry.seq, size, tree.subtree),
            )
            for entry in self._key_entries_for(conn, entries, size)
        ]
        document = build_receipt(subject, self.origin, self._public, note, items, keys, dataset)
        # Whether the actors signed is for the reader to judge: the receipt shows what is there.
        verify_receipt(document, self._public, origin=self.origin, check_actors=False)
        return document

    def _publication(self, conn: sqlite3.Connection, entries: Sequence[Entry]) -> Entry | None:
        """The registration of the data a job's ``entries`` ran on, if they are a job's."""
        bound = bound_dataset(entries)
        if bound is None:
            return None
        rows = conn.execute(
            "SELECT canonical FROM ledger_entries WHERE subject = ? AND type = ? AND seq < ?",
            ("dataset:" + bound.dataset, REGISTERED, bound.submitted),
        )
        found = (Entry.from_canonical(bytes(data), trusted=True) for (data,) in rows)
        return publication_of(bound, found)

    def _key_entries_for(
        self, conn: sqlite3.Connection, entries: Sequence[Entry], size: int
    ) -> list[Entry]:
        """The key entries among the first ``size`` that ``entries``' signatures rely on:
        the ``user.key`` and every ``user.key_revoked`` of each person's key they name, and
        the ``host.enrolled`` entries of each host that signed an outcome (all of them up to
        that outcome, so a re-enrollment between shows)."""
        people = {
            e.body["signed"].get("key") for e in entries if isinstance(e.body.get("signed"), dict)
        }
        hosts = {(e.body.get("host"), e.seq) for e in entries if "host_signature" in e.body}
        if not people and not hosts:
            return []
        rows = conn.execute(
            "SELECT canonical FROM ledger_entries WHERE type IN (?, ?, ?) AND seq < ? ORDER BY seq",
            (*sorted(KEY_TYPES), size),
        )
        found = []
        for (data,) in rows:
            entry = Entry.from_canonical(bytes(data), trusted=True)
            if entry.type == "host.enrolled":
                name = entry.actor.removeprefix("host:")
                if any(h == name and entry.seq < seq for h, seq in hosts):
                    found.append(entry)
            elif entry.body.get("fingerprint") in people:
                found.append(entry)
        return found

    def verify(self, kept: Sequence[str] = ()) -> VerifyReport:
        """Verify the whole log (see :func:`ledger.verify.verify_log`) with this log's key."""
        return verify_log(self.db_path, self._public, kept=kept)


def _check_size(size: int, current: int) -> None:
    if not 0 <= size <= current:
        raise NotFound(f"the log holds {current} entries, so it has no tree of size {size}")
