"""People's and hosts' signatures inside entries, checked by receipts and by whole-log verify.

Every key here is a real Ed25519 key; forgeries are appended with the operator's own ledger,
as someone holding the log's key and database (but not the person's key) would.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ledger import Ledger, VerificationError, verify_receipt
from ledger.receipt import RECEIPT_FORMAT_1
from tests.kit.signed_log import (
    Person,
    SignedJob,
    approve,
    decision_statement,
    register,
    revoke,
    signed_job,
    submit,
)


@pytest.fixture
def world(ledger: Ledger) -> SignedJob:
    return signed_job(ledger)


def _verdicts(ledger: Ledger, job: str) -> list[tuple[str, str, str, str | None]]:
    check = verify_receipt(ledger.receipt(job), ledger.public_key())
    return [(c.type, c.verdict, c.signer, c.key) for c in check.actions]


def test_a_receipt_names_three_actors_and_their_keys(world: SignedJob) -> None:
    bob, alice, host = world.bob.fingerprint, world.alice.fingerprint, world.host.fingerprint
    assert _verdicts(world.ledger, world.job) == [
        ("job.submitted", "signed", "bob", bob),
        ("job.approved", "signed", "alice", alice),
        ("job.finished", "signed", "host:h1", host),
        ("job.released", "signed", "alice", alice),
    ]


def test_a_receipt_carries_exactly_the_key_entries_it_relies_on(world: SignedJob) -> None:
    check = verify_receipt(world.ledger.receipt(world.job), world.ledger.public_key())
    assert [(e.type, e.actor) for e in check.keys] == [
        ("user.key", "bob"),
        ("user.key", "alice"),
        ("host.enrolled", "host:h1"),
    ]


def test_the_whole_log_verifies_and_counts_signed_actions(world: SignedJob) -> None:
    approve(world.ledger, "alice", "job-2", None)
    report = world.ledger.verify()
    assert (report.ok, report.signed, report.unsigned) == (True, 4, 1)
    assert "4 actions signed, 1 unsigned" in report.detail


def test_an_unsigned_action_is_reported_as_the_operators_word(world: SignedJob) -> None:
    seq = approve(world.ledger, "alice", "job-2", None)
    check = verify_receipt(world.ledger.receipt("job-2"), world.ledger.public_key())
    assert [(c.seq, c.verdict) for c in check.actions] == [(seq, "unsigned")]


def _forged_approval_caught(ledger: Ledger, seq: int, why: str) -> None:
    receipt = ledger.receipt("job-2")
    with pytest.raises(VerificationError, match=f"entry {seq} \\(job.approved\\): .*{why}"):
        verify_receipt(receipt, ledger.public_key())
    report = ledger.verify()
    assert (report.ok, report.first_bad) == (False, seq)
    assert why in report.detail


def test_an_approval_signed_by_a_key_not_the_owners_is_caught(world: SignedJob) -> None:
    mallory = Person("mallory")
    register(world.ledger, mallory)
    forged = mallory.envelope(decision_statement(world.ledger, world.alice, "job-2"))
    seq = approve(world.ledger, "alice", "job-2", forged)
    _forged_approval_caught(world.ledger, seq, "is mallory's, not alice's")


def test_an_approval_by_the_owners_key_revoked_before_is_caught(world: SignedJob) -> None:
    revoked_at = revoke(world.ledger, world.alice)
    envelope = world.alice.envelope(decision_statement(world.ledger, world.alice, "job-2"))
    seq = approve(world.ledger, "alice", "job-2", envelope)
    _forged_approval_caught(world.ledger, seq, f"was revoked at entry {revoked_at}")


def test_a_key_registered_after_the_action_does_not_count(ledger: Ledger) -> None:
    late = Person("alice")
    envelope = late.envelope(decision_statement(ledger, late, "job-2"))
    seq = approve(ledger, "alice", "job-2", envelope)
    register(ledger, late)
    _forged_approval_caught(ledger, seq, "is not registered before this entry")


def test_a_signature_over_another_jobs_statement_is_caught(world: SignedJob) -> None:
    other = world.alice.envelope(decision_statement(world.ledger, world.alice, world.job))
    seq = approve(world.ledger, "alice", "job-2", other)
    _forged_approval_caught(world.ledger, seq, "statement's job is 'job-1'")


def test_an_edited_statement_no_longer_matches_its_signature(world: SignedJob) -> None:
    envelope = world.alice.envelope(decision_statement(world.ledger, world.alice, "job-2"))
    envelope["statement"]["note"] = "approved, honest"
    seq = approve(world.ledger, "alice", "job-2", envelope)
    _forged_approval_caught(world.ledger, seq, "signature is not key")


def test_a_replayed_submit_statement_is_caught(world: SignedJob) -> None:
    submit(world.ledger, world.bob, "job-3", nonce="0" * 32)
    seq = submit(world.ledger, world.bob, "job-4", nonce="0" * 32)
    report = world.ledger.verify()
    assert (report.ok, report.first_bad) == (False, seq)
    assert "a replay" in report.detail


def test_a_receipt_whose_key_entry_was_dropped_does_not_verify(world: SignedJob) -> None:
    receipt: dict[str, Any] = copy.deepcopy(world.ledger.receipt(world.job))
    receipt["keys"] = receipt["keys"][1:]  # bob's user.key gone
    with pytest.raises(VerificationError, match="not registered before this entry"):
        verify_receipt(receipt, world.ledger.public_key())


def test_a_receipt_cannot_pass_an_action_off_as_a_key_entry(world: SignedJob) -> None:
    receipt: dict[str, Any] = copy.deepcopy(world.ledger.receipt(world.job))
    receipt["keys"].append(receipt["entries"][0])
    with pytest.raises(VerificationError, match="keys must be key entries"):
        verify_receipt(receipt, world.ledger.public_key())


def test_a_version_1_receipt_still_verifies(world: SignedJob) -> None:
    receipt = world.ledger.receipt(world.job)
    old = {k: v for k, v in receipt.items() if k != "keys"} | {"format": RECEIPT_FORMAT_1}
    check = verify_receipt(old, world.ledger.public_key())
    assert (check.format, len(check.entries), check.actions) == (RECEIPT_FORMAT_1, 5, ())


def test_policy_approvals_and_notes_quoting_the_envelope_are_counted_right(
    world: SignedJob,
) -> None:
    body = {"approver": "alice", "by_policy": True, "note": ""}
    world.ledger.append("job.approved", "bob", "job-5", body)
    quoting = {"approver": "alice", "by_policy": False, "note": '"signed": {} "by_policy":true'}
    world.ledger.append("job.approved", "alice", "job-6", quoting)
    report = world.ledger.verify()
    assert (report.ok, report.signed, report.unsigned) == (True, 4, 1)
    assert "4 actions signed, 1 unsigned, 1 by policy" in report.detail


def test_a_hostile_statement_value_is_quoted_short_in_the_report(world: SignedJob) -> None:
    statement = decision_statement(world.ledger, world.alice, "job-2")
    statement["job"] = "\x1b[2J" + "x" * 10_000
    seq = approve(world.ledger, "alice", "job-2", world.alice.envelope(statement))
    report = world.ledger.verify()
    assert (report.ok, report.first_bad) == (False, seq)
    assert len(report.detail) < 600
    assert "\x1b" not in report.detail
