"""Whole-log verification: recompute every hash, link, tree node and checkpoint.

Used by ``python -m ledger verify`` and by anyone holding a copy of the database file. The
scan streams rows and keeps only the frontier in memory, so a million entries take seconds.
What it proves: every stored entry hashes to its stored hash, links to the one before, sits
at its own seq, and the Merkle tree over the entries equals the stored nodes and every signed
checkpoint (the log's and any a reader kept). A rewrite that recomputes every hash after an
edit is still caught by the first signed checkpoint that covers it; a 32-byte root cannot say
which entry changed, so the report names the first entry after the last checkpoint that still
matches.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.entry import TIME_PATTERN, TYPE_PATTERN
from ledger.errors import LedgerError, NotFound
from ledger.merkle import EMPTY_ROOT, Frontier
from ledger.storage import EMPTY_HEAD, get_meta, node_key, read_state
from ledger.storage import checkpoints as stored_checkpoints

_ENTRY_KEYS = frozenset(("actor", "body", "prev", "seq", "subject", "time", "type"))
_TIME = re.compile(TIME_PATTERN)
_TYPE = re.compile(TYPE_PATTERN)


class VerifyReport(BaseModel):
    """The outcome of verifying a log.

    ``first_bad`` is the first seq that could not be proven (None when the log is fine or the
    problem is not an entry, e.g. a bad signature); ``detail`` says what is wrong and what to
    do, or what was checked.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = 1
    ok: bool
    entries: int
    first_bad: int | None = None
    detail: str
    checkpoints: int = 0
    root: str | None = None


class Problem(Exception):
    """The first thing found wrong during a scan, and the seq it is blamed on."""

    def __init__(self, seq: int | None, detail: str) -> None:
        super().__init__(detail)
        self.seq = seq
        self.detail = detail


ExpectedRoots = dict[int, list[tuple[bytes, str]]]


def scan(
    conn: sqlite3.Connection,
    start: int,
    frontier: Frontier,
    head: bytes,
    expected: ExpectedRoots,
) -> tuple[int, Frontier, bytes]:
    """Check entries from ``start`` on; return (count, frontier, head) or raise Problem.

    ``frontier`` and ``head`` describe the log just before ``start``; ``expected`` maps a tree
    size to the signed roots the tree must have at that size. The caller holds one read
    transaction so the entries and nodes are one snapshot.
    """
    sha256 = hashlib.sha256
    loads = json.loads
    append = frontier.append
    nodes = conn.execute(
        "SELECT key, hash FROM ledger_nodes WHERE key >= ? ORDER BY key", ((start + 1) << 6,)
    )
    last_good = _check_roots(start, frontier, expected, start)
    position = start
    prev_hex = head.hex()
    rows = conn.execute(
        "SELECT seq, hash, type, subject, canonical FROM ledger_entries WHERE seq >= ? "
        "ORDER BY seq",
        (start,),
    )
    for seq, stored_hash, type_, subject, data in rows:
        if seq != position:
            raise Problem(position, f"entry {position} is missing: the next stored one is {seq}")
        digest = sha256(data).digest()
        if digest != stored_hash:
            raise Problem(
                position,
                f"entry {position} was changed after it was written: its bytes hash to "
                f"{digest.hex()} but its stored hash is {bytes(stored_hash).hex()}",
            )
        try:
            obj = loads(data)
        except ValueError:
            raise Problem(position, f"entry {position} is not valid JSON") from None
        if type(obj) is not dict or obj.keys() != _ENTRY_KEYS:
            raise Problem(position, f"entry {position} does not have exactly the entry fields")
        if obj["seq"] != position or type(obj["seq"]) is not int:
            raise Problem(
                position,
                f"the entry stored at position {position} says it is seq {obj['seq']}: it was "
                "moved, reordered or replayed from elsewhere in the log",
            )
        if obj["prev"] != prev_hex:
            raise Problem(
                position,
                f"entry {position} names {obj['prev']} as the previous hash, but the entry "
                f"before it hashes to {prev_hex}: the chain is broken here",
            )
        if obj["subject"] != subject or obj["type"] != type_:
            raise Problem(position, f"entry {position}'s lookup columns disagree with its bytes")
        if not (
            type(obj["body"]) is dict
            and type(obj["actor"]) is str
            and type(obj["time"]) is str
            and _TIME.match(obj["time"])
            and _TYPE.match(type_)
        ):
            raise Problem(position, f"entry {position} has a malformed field")
        for level, index, value in append(sha256(b"\x00" + data).digest()):
            row = next(nodes, None)
            if row is None or row[0] != node_key(level, index) or row[1] != value:
                lo = index << level
                raise Problem(
                    lo,
                    f"the stored Merkle node over entries {lo}..{position} does not match them: "
                    "those entries were rewritten or the tree table was damaged",
                )
        position += 1
        prev_hex = digest.hex()
        if position in expected:
            last_good = _check_roots(position, frontier, expected, last_good)
    if next(nodes, None) is not None:
        raise Problem(
            position,
            f"the tree holds nodes for entries past {position - 1}: entries were removed",
        )
    return position, frontier, bytes.fromhex(prev_hex)


def _check_roots(size: int, frontier: Frontier, expected: ExpectedRoots, last_good: int) -> int:
    wanted = expected.get(size)
    if not wanted:
        return last_good
    root = frontier.root()
    for signed_root, label in wanted:
        if signed_root != root:
            raise Problem(
                last_good,
                f"{label} at size {size} does not match the log (signed root "
                f"{signed_root.hex()}, entries give {root.hex()}): an entry in "
                f"{last_good}..{size - 1} differs from what was signed, or the log was forked",
            )
    return size


def _report(ok: bool, entries: int, detail: str, **extra: object) -> VerifyReport:
    return VerifyReport.model_validate({"ok": ok, "entries": entries, "detail": detail, **extra})


def verify_log(
    db_path: Path | str, public_key: bytes | None = None, *, kept: Sequence[str] = ()
) -> VerifyReport:
    """Verify the whole log in ``db_path`` (read-only; a copied file works).

    Steps: (1) read the log's origin and key; (2) open every stored checkpoint, and every
    checkpoint a reader ``kept``, with ``public_key`` (or, failing that, the key the file
    names); (3) scan every entry against its hash, its predecessor, the stored tree and the
    signed roots; (4) compare the state row with the scan; (5) any checkpoint beyond the last
    entry means entries were removed. The first problem ends the check.
    """
    path = Path(db_path)
    if not path.is_file():
        raise NotFound(f"there is no ledger database at {path}; check the path")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    try:
        conn.execute("BEGIN")
        return _verify(conn, public_key, kept)
    except sqlite3.DatabaseError as exc:
        return _report(False, 0, f"{path} cannot be read as a ledger database: {exc}")
    finally:
        conn.close()


def _verify(
    conn: sqlite3.Connection, public_key: bytes | None, kept: Sequence[str]
) -> VerifyReport:
    size, head, frontier = read_state(conn)
    origin = get_meta(conn, "origin")
    stored_key = get_meta(conn, "public_key")
    note = ""
    if public_key is None:
        if stored_key is None:
            return _report(False, size, "the file names no public key; pass the log's key")
        public_key = base64.b64decode(stored_key)
        note = " (signatures were checked with the key the file names; pass --key to check "
        note += "them with a key you trust)"
    elif stored_key is not None and base64.b64decode(stored_key) != public_key:
        return _report(
            False,
            size,
            f"this log is signed by key {stored_key}, not the key you passed; "
            "check which log's key you hold",
        )
    expected: ExpectedRoots = {}
    notes: list[tuple[int | None, str, str]] = [
        (filed, text, "the stored checkpoint") for filed, text in stored_checkpoints(conn)
    ]
    notes += [(None, text, "the checkpoint you kept") for text in kept]
    for filed, text, label in notes:
        try:
            checkpoint: Checkpoint = open_checkpoint(text, public_key, origin)
        except LedgerError as exc:
            where = f" for size {filed}" if filed is not None else ""
            return _report(False, size, f"{label}{where} cannot be trusted: {exc}")
        if filed is not None and checkpoint.size != filed:
            detail = f"{label} filed under size {filed} is for size {checkpoint.size}"
            return _report(False, size, detail)
        expected.setdefault(checkpoint.size, []).append((checkpoint.root, label))
    try:
        count, computed, last = scan(conn, 0, Frontier(), EMPTY_HEAD, expected)
        if count != size or last != head or computed.to_bytes() != frontier.to_bytes():
            first = min(count, size)
            raise Problem(
                first,
                f"the state row says {size} entries but {count} are stored (or its head or "
                f"frontier disagrees): entries from {first} on were removed or added outside "
                "the ledger",
            )
        beyond = [s for s in expected if s > count]
        if beyond:
            raise Problem(
                count,
                f"a signed checkpoint covers {max(beyond)} entries but the log holds {count}: "
                f"entries {count}..{max(beyond) - 1} were removed",
            )
    except Problem as problem:
        return _report(False, size, problem.detail, first_bad=problem.seq)
    root = computed.root() if count else EMPTY_ROOT
    return _report(
        True,
        count,
        f"{count} entries and {len(notes)} checkpoints verify: every hash, link, tree node "
        f"and signature{note}",
        checkpoints=len(notes),
        root=root.hex(),
    )
