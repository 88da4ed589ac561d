"""Attacks on a real ledger file by someone who can write the database but has no key.

Each attacker below edits the SQLite file directly. The careful ones also recompute every
hash, tree node and the state row with the public algorithms, so only what was signed (the
checkpoints the log stored, or ones a reader kept) can give them away. Every attack must be
caught by ``verify`` (or by a reader's consistency check) with the bad seq named.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from ledger_testkit import ORIGIN, fill

from ledger import InconsistentLog, Ledger, NotFound, VerificationError, verify_extends, verify_log
from ledger.entry import Entry
from ledger.merkle import Frontier, leaf_hash


def attacker(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(db, isolation_level=None)


def retidy(conn: sqlite3.Connection) -> None:
    """Recompute every entry hash, tree node and the state row from the entry bytes."""
    frontier, head = Frontier(), bytes(32)
    rows = conn.execute("SELECT seq, canonical FROM ledger_entries ORDER BY seq").fetchall()
    for seq, data in rows:
        head = hashlib.sha256(data).digest()
        nodes = b"".join(h for _, _, h in frontier.append(leaf_hash(data)))
        conn.execute(
            "UPDATE ledger_entries SET hash = ?, nodes = ? WHERE seq = ?", (head, nodes, seq)
        )
    conn.execute(
        "UPDATE ledger_state SET size = ?, head = ?, frontier = ?",
        (frontier.size, head, frontier.to_bytes()),
    )


def edited(data: bytes, **body: object) -> bytes:
    """The same entry with ``body`` merged into its body (so its hash changes)."""
    old = Entry.from_canonical(data)
    fields = old.model_dump() | {"body": old.body | body}
    return Entry.create(**fields).canonical_bytes()


def rewrite_and_rechain(db: Path, seq: int, body: dict[str, object]) -> None:
    """Change one entry's body and re-chain every later entry to it, without the key."""
    conn = attacker(db)
    rows = conn.execute(
        "SELECT seq, canonical FROM ledger_entries WHERE seq >= ? ORDER BY seq", (seq,)
    ).fetchall()
    prev = conn.execute("SELECT hash FROM ledger_entries WHERE seq = ?", (seq - 1,)).fetchone()
    prev_hex = bytes(prev[0]).hex()
    for number, data in rows:
        old = Entry.from_canonical(data)
        new = Entry.create(
            seq=number,
            prev=prev_hex,
            time=old.time,
            type=old.type,
            actor=old.actor,
            subject=old.subject,
            body=body if number == seq else old.body,
        )
        conn.execute(
            "UPDATE ledger_entries SET canonical = ? WHERE seq = ?",
            (new.canonical_bytes(), number),
        )
        prev_hex = new.hash.hex()
    retidy(conn)
    conn.close()


@pytest.fixture
def signed(ledger: Ledger) -> Ledger:
    """Twelve entries, with checkpoints signed at sizes 4 and 10 and at the head (12)."""
    fill(ledger, 4)
    ledger.checkpoint()
    fill(ledger, 6)
    ledger.checkpoint()
    fill(ledger, 2)
    ledger.checkpoint()
    assert ledger.verify().ok
    return ledger


def test_editing_a_body_is_named(signed: Ledger) -> None:
    conn = attacker(signed.db_path)
    data = conn.execute("SELECT canonical FROM ledger_entries WHERE seq = 5").fetchone()[0]
    conn.execute("UPDATE ledger_entries SET canonical = ? WHERE seq = 5", (edited(data, cpus=64),))
    conn.close()
    report = signed.verify()
    assert (report.ok, report.first_bad) == (False, 5)
    assert "entry 5 was changed after it was written" in report.detail


def test_editing_a_body_in_sql_is_named(signed: Ledger) -> None:
    conn = attacker(signed.db_path)
    conn.execute("UPDATE ledger_entries SET canonical = replace(canonical, 'alice', 'eve')")
    conn.close()
    report = signed.verify()
    assert (report.ok, report.first_bad) == (False, 0)
    assert "not stored as bytes" in report.detail


def test_rechaining_after_an_edit_is_caught_by_the_signed_checkpoints(signed: Ledger) -> None:
    rewrite_and_rechain(signed.db_path, 6, {"n": 6, "approved_by": "mallory"})
    report = signed.verify()
    assert (report.ok, report.first_bad) == (False, 4)
    assert "the stored checkpoint at size 10" in report.detail
    assert "4..9" in report.detail
    fill(signed, 1)
    with pytest.raises(InconsistentLog, match="does not extend the checkpoint signed at size 12"):
        signed.checkpoint()


def test_rechaining_is_pinned_to_the_entry_when_every_step_was_signed(ledger: Ledger) -> None:
    for _ in range(8):
        fill(ledger, 1)
        ledger.checkpoint()
    rewrite_and_rechain(ledger.db_path, 5, {"n": 99})
    report = ledger.verify()
    assert (report.ok, report.first_bad) == (False, 5)


def test_rechaining_that_leaves_the_tree_nodes_behind_is_named(signed: Ledger) -> None:
    conn = attacker(signed.db_path)
    data = conn.execute("SELECT canonical FROM ledger_entries WHERE seq = 11").fetchone()[0]
    changed = edited(data, cpus=64)
    digest = hashlib.sha256(changed).digest()
    conn.execute(
        "UPDATE ledger_entries SET canonical = ?, hash = ? WHERE seq = 11", (changed, digest)
    )
    conn.execute("UPDATE ledger_state SET head = ?", (digest,))
    conn.close()
    report = signed.verify()
    assert (report.ok, report.first_bad) == (False, 10)
    assert "tree nodes stored with entry 11" in report.detail


def test_deleting_an_entry_is_named(signed: Ledger) -> None:
    conn = attacker(signed.db_path)
    conn.execute("DELETE FROM ledger_entries WHERE seq = 7")
    conn.close()
    report = signed.verify()
    assert (report.ok, report.first_bad) == (False, 7)
    assert "entry 7 is missing" in report.detail


def test_reordering_two_entries_is_named(signed: Ledger) -> None:
    conn = attacker(signed.db_path)
    conn.execute("UPDATE ledger_entries SET seq = -1 WHERE seq = 8")
    conn.execute("UPDATE ledger_entries SET seq = 8 WHERE seq = 9")
    conn.execute("UPDATE ledger_entries SET seq = 9 WHERE seq = -1")
    retidy(conn)
    conn.close()
    report = signed.verify()
    assert (report.ok, report.first_bad) == (False, 8)
    assert "says it is seq 9" in report.detail


def test_replaying_an_old_entry_is_named(signed: Ledger) -> None:
    conn = attacker(signed.db_path)
    conn.execute(
        "INSERT INTO ledger_entries (seq, hash, type, subject, canonical, nodes)"
        " SELECT 12, hash, type, subject, canonical, x'' FROM ledger_entries WHERE seq = 3"
    )
    retidy(conn)
    conn.close()
    report = signed.verify()
    assert (report.ok, report.first_bad) == (False, 12)
    assert "says it is seq 3" in report.detail
    assert "replayed" in report.detail


def truncate(db: Path, keep: int, *, hide_checkpoints: bool) -> None:
    conn = attacker(db)
    conn.execute("DELETE FROM ledger_entries WHERE seq >= ?", (keep,))
    if hide_checkpoints:
        conn.execute("DELETE FROM ledger_checkpoints WHERE size > ?", (keep,))
    retidy(conn)
    conn.close()


def test_truncating_after_a_published_checkpoint_is_named(signed: Ledger) -> None:
    truncate(signed.db_path, 8, hide_checkpoints=False)
    report = signed.verify()
    assert (report.ok, report.first_bad) == (False, 8)
    assert "entries 8..11 were removed" in report.detail
    with pytest.raises(InconsistentLog, match=r"entries 8\.\.11 were removed"):
        signed.checkpoint()


def test_truncation_hidden_from_the_log_is_caught_by_a_readers_checkpoint(
    signed: Ledger,
) -> None:
    kept = signed.checkpoint()  # a reader keeps the checkpoint at size 12
    truncate(signed.db_path, 8, hide_checkpoints=True)
    assert signed.verify().ok  # the file alone cannot know: that is what readers are for

    report = signed.verify(kept=[kept])
    assert (report.ok, report.first_bad) == (False, 8)
    assert "entries 8..11 were removed" in report.detail

    new = signed.checkpoint()  # the log now signs its shorter history...
    with pytest.raises(VerificationError, match="shrank from 12 to 8 entries"):
        verify_extends(kept, new, [], signed.public_key(), ORIGIN)  # ...which the reader refuses
    with pytest.raises(NotFound):
        signed.consistency_proof(12, signed.size())


def test_a_fork_served_to_two_readers_is_caught(
    signed: Ledger, make_ledger: Callable[..., Ledger], tmp_path: Path
) -> None:
    shared = signed.checkpoint()  # both readers saw the log at size 12
    signed.close()
    shutil.copy(signed.db_path, tmp_path / "fork.db")
    shutil.copy(signed.db_path, tmp_path / "main.db")
    main, fork = make_ledger(db="main.db"), make_ledger(db="fork.db")
    main.append("job.approved", "owner", "job-1", {})
    fork.append("job.rejected", "owner", "job-1", {"reason": "never happened"})
    kept_by_first, kept_by_second = main.checkpoint(), fork.checkpoint()
    key = main.public_key()

    # Each view on its own is a valid log extending what both readers saw.
    verify_extends(shared, kept_by_first, main.consistency_proof(12, 13), key, ORIGIN)
    verify_extends(shared, kept_by_second, fork.consistency_proof(12, 13), key, ORIGIN)

    # The first reader meets the fork: its checkpoint does not match.
    fork.append("job.started", "worker", "job-1", {})
    later = fork.checkpoint()
    with pytest.raises(VerificationError, match="forked"):
        verify_extends(kept_by_first, later, fork.consistency_proof(13, 14), key, ORIGIN)

    report = verify_log(fork.db_path, key, kept=[kept_by_first])
    assert (report.ok, report.first_bad) == (False, 12)
    assert "the checkpoint you kept at size 13" in report.detail


def test_a_forged_stored_checkpoint_is_refused(signed: Ledger) -> None:
    note = signed.checkpoint().replace("\n12\n", "\n11\n")
    conn = attacker(signed.db_path)
    conn.execute("INSERT INTO ledger_checkpoints VALUES (11, ?)", (note,))
    conn.close()
    report = signed.verify()
    assert not report.ok
    assert report.first_bad is None
    assert "does not verify" in report.detail


def test_a_checkpoint_from_another_origin_is_refused(
    signed: Ledger, make_ledger: Callable[..., Ledger]
) -> None:
    other = make_ledger(db="other.db", origin="elsewhere.example/log")
    fill(other, 12)
    conn = attacker(signed.db_path)
    conn.execute("DELETE FROM ledger_checkpoints WHERE size = 12")
    conn.execute("INSERT INTO ledger_checkpoints VALUES (12, ?)", (other.checkpoint(),))
    conn.close()
    report = signed.verify()
    assert not report.ok
    assert "'elsewhere.example/log', not 'c2d.test/ledger'" in report.detail


def test_verifying_with_the_wrong_key_fails(signed: Ledger) -> None:
    stranger = Ledger(signed.db_path.with_name("x.db"), signed.db_path.with_name("x.key"), ORIGIN)
    report = verify_log(signed.db_path, stranger.public_key())
    stranger.close()
    assert not report.ok
    assert "not the key you passed" in report.detail
