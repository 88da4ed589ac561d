"""State changes and ledger entries commit together or not at all, and the log verifies."""

import sqlite3

import pytest

from jobs.service import Service
from jobs.states import JobState
from jobs.store import Store
from ledger import Ledger
from tests.kit.worlds import make_service, ok_outcome

S = JobState


class Boom(Exception):
    pass


def failing_ledger(fail_on: set[str]):
    """A real Ledger whose append writes the entry, then fails for the given types."""

    class FailingLedger(Ledger):
        def append(self, type, actor, subject, body, *, conn=None):
            entry = super().append(type, actor, subject, body, conn=conn)
            if type in fail_on:
                raise Boom(f"disk full after writing {type}")
            return entry

    return FailingLedger


def test_a_failed_append_rolls_back_the_state_change_and_the_entry(new_world):
    fail_on: set[str] = set()
    w = new_world(ledger_cls=failing_ledger(fail_on))
    job = w.submit()
    size = w.ledger.size()
    fail_on.add("job.approved")
    with pytest.raises(Boom):
        w.service.approve(w.olga, job.id)
    assert w.store.get_job(job.id).state is S.PENDING
    assert w.store.get_job(job.id).approval is None
    assert w.ledger.size() == size
    assert w.types(job.id) == ["job.submitted"]
    fail_on.clear()
    w.service.approve(w.olga, job.id)
    assert w.types(job.id) == ["job.submitted", "job.approved"]
    assert w.ledger.verify().ok


def test_a_failure_in_the_second_step_undoes_the_first(new_world):
    """finish + release-by-policy is one transaction: if the release entry fails, the job is
    still running and there is no job.finished either."""
    fail_on: set[str] = set()
    w = new_world(ledger_cls=failing_ledger(fail_on))
    job = w.approved()
    claim = w.service.claim(job.id, "host-a", 60)
    fail_on.add("job.released")
    with pytest.raises(Boom):
        w.service.finish(job.id, claim.fence, ok_outcome())
    assert w.store.get_job(job.id).state is S.RUNNING
    assert "job.finished" not in w.types(job.id)
    fail_on.clear()
    assert w.service.finish(job.id, claim.fence, ok_outcome()).state is S.RELEASED
    assert w.types(job.id).count("job.finished") == 1
    assert w.ledger.verify().ok


def test_submit_with_trusted_code_is_all_or_nothing(new_world):
    fail_on: set[str] = set()
    w = new_world(ledger_cls=failing_ledger(fail_on))
    first = w.approved()
    w.service.trust(w.olga, first.id)
    before = len(w.store.list_jobs())
    fail_on.add("job.approved")
    with pytest.raises(Boom):
        w.submit()
    assert len(w.store.list_jobs()) == before
    assert w.ledger.verify().ok


def test_a_whole_life_writes_each_entry_once_and_the_log_verifies(world):
    job = world.approved()
    claim = world.service.claim(job.id, "host-a", 60)
    world.service.heartbeat(job.id, "host-a", claim.fence, 60)
    world.service.finish(job.id, claim.fence, ok_outcome())
    entries = world.ledger.entries_for(job.id)
    assert [e.type for e in entries] == [
        "job.submitted",
        "job.approved",
        "job.started",
        "job.finished",
        "job.released",
    ]
    assert [e.actor for e in entries] == [
        "rita",
        "olga",
        "worker:host-a",
        "worker:host-a",
        "worker:host-a",
    ]
    seqs = [e.seq for e in entries]
    assert seqs == sorted(set(seqs))
    report = world.ledger.verify()
    assert report.ok, report.detail
    assert report.entries == world.ledger.size()
    receipt = world.ledger.receipt(job.id)
    assert receipt


def test_the_store_and_the_ledger_must_share_one_file(tmp_path, world):
    other = Store(tmp_path / "other.db")
    with pytest.raises(ValueError, match="one database file"):
        Service(other, world.ledger)
    other.close()


def test_a_second_process_sees_the_same_state(world):
    job = world.approved()
    service, store, ledger = make_service(world.tmp, world.clock)
    assert service.load_job(job.id).state is S.APPROVED
    assert [j.id for j in service.dispatchable()] == [job.id]
    store.close()
    ledger.close()


def test_tampering_with_a_committed_entry_is_caught(world):
    job = world.approved()
    world.tampered = True
    raw = sqlite3.connect(world.store.path)
    row = raw.execute(
        "SELECT seq, canonical FROM ledger_entries WHERE subject = ? ORDER BY seq", (job.id,)
    ).fetchall()[-1]
    raw.execute(
        "UPDATE ledger_entries SET canonical = ? WHERE seq = ?",
        (bytes(row[1]).replace(b'"olga"', b'"rita"'), row[0]),
    )
    raw.commit()
    raw.close()
    report = world.ledger.verify()
    assert not report.ok
    assert report.first_bad == row[0]
