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

import hashlib
import json
import json.scanner
import re
import sqlite3
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from ledger.actors import ACTIONS, WATCHED, ActorCheck, Row, summary
from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.entry import TIME_PATTERN, TYPE_PATTERN
from ledger.errors import LedgerError, NotFound
from ledger.keys import parse_public_key
from ledger.merkle import Frontier
from ledger.storage import EMPTY_HEAD, get_meta, read_state
from ledger.storage import checkpoints as stored_checkpoints

# The C scanner behind json.loads, called directly: it skips the per-call encoding sniffing
# and whitespace handling that dominate json.loads on small documents.
_json_scanner = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]
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
    signed: int = 0
    """Actions (people's, and hosts' outcomes) whose signatures verify (``ledger.actors``)."""
    unsigned: int = 0
    """Actions recorded on the operator's word only."""


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
    actions: Actions | None = None,
) -> tuple[int, Frontier, bytes]:
    """Check entries from ``start`` on; return (count, frontier, head) or raise Problem.

    With ``actions`` (a scan from entry 0), also check every action's signature against the
    key entries before it (``ledger.actors``) and count the verdicts in ``actions.counts``.

    ``frontier`` and ``head`` describe the log just before ``start`` (the frontier is updated
    in place); ``expected`` maps a tree size to the signed roots the tree must have at that
    size. The caller holds one read transaction so all rows come from one snapshot.

    The loop runs once per entry of the log, so it is written flat: one combined test per
    row, and only a row that fails it is examined again to say what is wrong.
    """
    sha256 = hashlib.sha256
    parse = _json_scanner
    time_ok = _TIME.match
    keys = _ENTRY_KEYS
    good_types: set[str] = set()
    stack = frontier.hashes
    last_good = _check_roots(start, frontier, expected, start)
    position = start
    prev_hex = head.hex()
    watched = WATCHED if actions is not None else frozenset()
    rows = conn.execute(
        "SELECT seq, hash, type, subject, canonical, nodes FROM ledger_entries WHERE seq >= ? "
        "ORDER BY seq",
        (start,),
    )
    for row in rows:
        seq, stored_hash, type_, subject, data, nodes = row
        try:
            digest = sha256(data).digest()
            text = data.decode()
            obj, end = parse(text, 0)
        except (TypeError, AttributeError, UnicodeDecodeError, ValueError, StopIteration):
            raise Problem(position, _diagnose(position, row, prev_hex)) from None
        if not (
            seq == position
            and digest == stored_hash
            and end == len(text)
            and type(obj) is dict
            and obj.keys() == keys
            and obj["seq"] == position
            and obj["prev"] == prev_hex
            and obj["subject"] == subject
            and obj["type"] == type_
            and type(obj["body"]) is dict
            and type(obj["actor"]) is str
            and type(obj["time"]) is str
            and time_ok(obj["time"])
            and (type_ in good_types or _valid_type(type_, good_types))
        ):
            raise Problem(position, _diagnose(position, row, prev_hex))
        if type_ in watched:
            actions.see(position, obj)  # type: ignore[union-attr]
        # Append the leaf to the frontier, collecting the subtrees it completes.
        current = sha256(b"\x00" + data).digest()
        completed = b""
        carry = position
        while carry & 1:
            current = sha256(b"\x01" + stack.pop() + current).digest()
            completed += current
            carry >>= 1
        stack.append(current)
        if completed != nodes:
            raise _node_problem(position, completed, nodes)
        position += 1
        prev_hex = digest.hex()
        if position in expected:
            frontier.size = position
            last_good = _check_roots(position, frontier, expected, last_good)
    frontier.size = position
    return position, frontier, bytes.fromhex(prev_hex)


class Actions:
    """The actor check of a whole-log scan, and how many actions got each verdict."""

    def __init__(self, origin: str) -> None:
        self.check = ActorCheck(origin)
        self.counts: Counter[str] = Counter()

    def see(self, seq: int, obj: dict[str, Any]) -> None:
        """Take one proven entry of a watched type; raise Problem for a bad signature."""
        body = obj["body"]
        if obj["type"] in ACTIONS and "signed" not in body:
            # The common case, decided without the checker: no signature to check.
            self.counts["policy" if body.get("by_policy") is True else "unsigned"] += 1
            return
        row = Row(seq, obj["type"], obj["actor"], obj["subject"], body)
        found = self.check.feed(row)
        if found is None:
            return
        if found.verdict == "bad":
            raise Problem(
                seq, f"{found.detail}; the operator's log holds an action its actor did not sign"
            )
        self.counts[found.verdict] += 1


def _node_problem(position: int, completed: bytes, stored: object) -> Problem:
    """Blame the smallest stored subtree that disagrees with the recomputed one."""
    level = 1
    while (
        isinstance(stored, bytes)
        and completed[(level - 1) * 32 : level * 32] == stored[(level - 1) * 32 : level * 32]
    ):
        level += 1
    # A stored node where none was completed is blamed on this entry alone.
    lo = position + 1 - (1 << level) if level <= len(completed) // 32 else position
    return Problem(
        lo,
        f"the tree nodes stored with entry {position} (the subtree over entries "
        f"{lo}..{position}) do not match the entries: they were rewritten or the table was "
        "damaged",
    )


def _valid_type(type_: object, good_types: set[str]) -> bool:
    if isinstance(type_, str) and _TYPE.match(type_):
        good_types.add(type_)
        return True
    return False


def _diagnose(position: int, row: tuple[Any, ...], prev_hex: str) -> str:
    """Say why the row at ``position`` failed the scan's combined test (the slow path)."""
    seq, stored_hash, type_, subject, data, _ = row
    if seq != position:
        return f"entry {position} is missing: the next stored entry is {seq}"
    if not isinstance(data, bytes) or not isinstance(stored_hash, bytes):
        return f"entry {position} is not stored as bytes: it was edited outside the ledger"
    digest = hashlib.sha256(data).digest()
    if digest != stored_hash:
        return (
            f"entry {position} was changed after it was written: its bytes hash to "
            f"{digest.hex()} but its stored hash is {stored_hash.hex()}"
        )
    try:
        obj = json.loads(data)
    except ValueError:
        return f"entry {position} is not valid JSON"
    if type(obj) is not dict or obj.keys() != _ENTRY_KEYS:
        return f"entry {position} is not a JSON object with exactly the entry fields"
    if obj["seq"] != position:
        return (
            f"the entry stored at position {position} says it is seq {obj['seq']}: it was "
            "moved, reordered or replayed from elsewhere in the log"
        )
    if obj["prev"] != prev_hex:
        return (
            f"entry {position} names {obj['prev']} as the previous hash, but the entry "
            f"before it hashes to {prev_hex}: the chain is broken here"
        )
    if obj["subject"] != subject or obj["type"] != type_:
        return f"entry {position}'s subject or type columns disagree with its bytes"
    return f"entry {position} has a malformed field"


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
    except (sqlite3.DatabaseError, LedgerError) as exc:
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
        public_key = parse_public_key(stored_key)
        note = " (signatures were checked with the key the file names; pass --key to check "
        note += "them with a key you trust)"
    elif stored_key is not None and parse_public_key(stored_key) != public_key:
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
        actions = Actions(origin or "")
        count, computed, last = scan(conn, 0, Frontier(), EMPTY_HEAD, expected, actions)
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
    return _report(
        True,
        count,
        f"{count} entries and {len(notes)} checkpoints verify: every hash, link, tree node "
        f"and signature; {summary(actions.counts)}{note}",
        checkpoints=len(notes),
        root=computed.root().hex(),
        signed=actions.counts["signed"],
        unsigned=actions.counts["unsigned"],
    )
