"""The Ledger over a real SQLite file: appends, reads, proofs from storage, checkpoints."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from ledger_testkit import ORIGIN, fill

from ledger import (
    BadEntry,
    Ledger,
    LedgerConflict,
    NotFound,
    NotInTransaction,
    merkle,
    verify_log,
)
from ledger.checkpoint import open_checkpoint
from ledger.entry import GENESIS_PREV
from ledger.keys import load_or_create_signing_key
from ledger.storage import connect


def test_entries_chain_from_genesis(ledger: Ledger) -> None:
    first = ledger.append("dataset.registered", "owner", "patients", {"digest": "sha256:00"})
    second = ledger.append("job.submitted", "alice", "job-1", {"code": "sha256:11"})
    assert (first.seq, first.prev) == (0, GENESIS_PREV)
    assert (second.seq, second.prev) == (1, first.hash.hex())
    assert first.time < second.time
    assert first.time.endswith("Z")
    assert ledger.size() == 2
    assert ledger.entries() == [first, second]
    assert ledger.entries(1) == [second]
    assert ledger.entries(0, limit=1) == [first]
    assert ledger.entries_for("job-1") == [second]
    assert ledger.entries_for("nobody") == []


def test_an_empty_log_has_the_empty_root_and_verifies(ledger: Ledger) -> None:
    assert ledger.size() == 0
    assert ledger.root() == merkle.EMPTY_ROOT
    note = ledger.checkpoint()
    assert open_checkpoint(note, ledger.public_key(), ORIGIN).size == 0
    assert ledger.verify().ok


def test_roots_and_proofs_from_storage_match_the_in_memory_tree(ledger: Ledger) -> None:
    fill(ledger, 21)
    leaves = [e.leaf_hash for e in ledger.entries()]
    subtree = merkle.subtree_of(leaves)
    for n in range(1, 22):
        assert ledger.root(n) == merkle.root_of(leaves[:n])
        for i in range(n):
            proof = ledger.inclusion_proof(i, n)
            assert proof == merkle.inclusion_proof(i, n, subtree)
            merkle.verify_inclusion(i, n, leaves[i], proof, ledger.root(n))
        for m in range(1, n + 1):
            proof = ledger.consistency_proof(m, n)
            assert proof == merkle.consistency_proof(m, n, subtree)
            merkle.verify_consistency(m, n, ledger.root(m), ledger.root(n), proof)
    assert ledger.root(0) == merkle.EMPTY_ROOT


def test_proofs_in_a_larger_tree_come_from_stored_subtrees(ledger: Ledger) -> None:
    fill(ledger, 1000)
    leaves = [e.leaf_hash for e in ledger.entries()]
    subtree = merkle.subtree_of(leaves)
    for i, n in [(0, 1000), (999, 1000), (511, 512), (512, 1000), (700, 777)]:
        assert ledger.inclusion_proof(i, n) == merkle.inclusion_proof(i, n, subtree)
    for m, n in [(1, 1000), (512, 1000), (513, 1000), (999, 1000), (300, 777)]:
        assert ledger.consistency_proof(m, n) == merkle.consistency_proof(m, n, subtree)


def test_questions_beyond_the_log_are_not_found(ledger: Ledger) -> None:
    fill(ledger, 3)
    for ask in (
        lambda: ledger.root(4),
        lambda: ledger.inclusion_proof(3, 3),
        lambda: ledger.inclusion_proof(0, 4),
        lambda: ledger.consistency_proof(0, 3),
        lambda: ledger.consistency_proof(2, 4),
        lambda: ledger.receipt("job-404"),
    ):
        with pytest.raises(NotFound) as caught:
            ask()
        assert caught.value.kind == "not_found"


def test_append_many_is_all_or_nothing(ledger: Ledger) -> None:
    fill(ledger, 2)
    records = [
        ("job.submitted", "alice", "job-9", {"ok": 1}),
        ("Bad Type", "alice", "job-9", {}),
    ]
    with pytest.raises(BadEntry, match="Bad Type"):
        ledger.append_many(records)
    assert ledger.size() == 2
    assert ledger.entries_for("job-9") == []
    made = ledger.append_many(records[:1] * 3)
    assert [e.seq for e in made] == [2, 3, 4]
    assert ledger.verify().ok


def _jobs_table(db: Path) -> sqlite3.Connection:
    """A stand-in for the jobs store: its own table in the ledger's database file."""
    conn = connect(db)
    conn.execute("CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, state TEXT NOT NULL)")
    Ledger.init_schema(conn)
    Ledger.init_schema(conn)  # idempotent
    return conn


def test_a_state_change_and_its_entry_commit_or_roll_back_together(
    tmp_path: Path, make_ledger: Callable[..., Ledger]
) -> None:
    conn = _jobs_table(tmp_path / "ledger.db")
    ledger = make_ledger()

    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO jobs VALUES ('job-1', 'pending')")
    ledger.append("job.submitted", "alice", "job-1", {}, conn=conn)
    conn.execute("ROLLBACK")
    assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (0,)
    assert ledger.size() == 0

    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO jobs VALUES ('job-1', 'pending')")
    entry = ledger.append("job.submitted", "alice", "job-1", {}, conn=conn)
    assert conn.in_transaction  # the ledger neither committed nor rolled back
    conn.execute("COMMIT")
    assert conn.execute("SELECT state FROM jobs").fetchone() == ("pending",)
    assert ledger.entries_for("job-1") == [entry]
    assert ledger.verify().ok
    conn.close()


def test_append_on_a_connection_without_a_transaction_is_refused(
    tmp_path: Path, ledger: Ledger
) -> None:
    conn = _jobs_table(tmp_path / "ledger.db")
    with pytest.raises(NotInTransaction, match="BEGIN IMMEDIATE") as caught:
        ledger.append("job.submitted", "alice", "job-1", {}, conn=conn)
    assert caught.value.kind == "invalid"
    conn.close()


def test_every_ledger_table_is_prefixed(tmp_path: Path) -> None:
    conn = _jobs_table(tmp_path / "shared.db")
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert names - {"jobs"} == {
        "ledger_meta",
        "ledger_state",
        "ledger_entries",
        "ledger_checkpoints",
    }
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    conn.close()


def test_checkpoint_is_reused_until_the_log_grows(ledger: Ledger) -> None:
    assert ledger.latest_checkpoint() is None
    fill(ledger, 5)
    first = ledger.checkpoint()
    assert ledger.checkpoint() == first
    assert ledger.latest_checkpoint() == first
    fill(ledger, 1)
    second = ledger.checkpoint()
    assert second != first
    assert open_checkpoint(second, ledger.public_key(), ORIGIN).size == 6
    assert ledger.verify().checkpoints == 2


def test_a_file_belongs_to_one_origin_and_one_key(
    tmp_path: Path, make_ledger: Callable[..., Ledger]
) -> None:
    make_ledger()
    with pytest.raises(LedgerConflict, match="origin") as caught:
        make_ledger(origin="other.example/log")
    assert caught.value.kind == "conflict"
    load_or_create_signing_key(tmp_path / "another.key")
    with pytest.raises(LedgerConflict, match="public_key"):
        make_ledger(key="another.key")


def test_threads_share_one_ledger(ledger: Ledger) -> None:
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for n in range(50):
                ledger.append("job.started", f"worker-{worker}", f"job-{worker}", {"n": n})
        except BaseException as exc:  # handed to the main thread's assertion
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert ledger.size() == 200
    assert [e.seq for e in ledger.entries()] == list(range(200))
    assert ledger.verify().ok


def test_a_lost_key_is_not_silently_replaced(
    tmp_path: Path, make_ledger: Callable[..., Ledger]
) -> None:
    fill(make_ledger(), 2)
    (tmp_path / "ledger.key").unlink()
    with pytest.raises(LedgerConflict, match="put the key file back"):
        make_ledger()
    assert not (tmp_path / "ledger.key").exists()


def test_verifying_a_file_that_is_not_a_ledger_reports_it(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a database")
    report = verify_log(tmp_path / "notes.txt")
    assert not report.ok
    assert "cannot be read as a ledger database" in report.detail
