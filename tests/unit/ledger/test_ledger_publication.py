"""The publication of a job's data in its receipt, and in the whole-log check.

A ``dataset.registered`` entry is its publisher's signed action (``c2d/publish``), checked
against the key entries like the others; a job's receipt carries the registration of the
digest the job ran on, and the verifier holds it to that digest and to the host's signature.
Every key is a real Ed25519 key; forgeries are appended with the operator's own ledger.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from ledger import Ledger, VerificationError, verify_receipt
from tests.kit.signed_log import (
    DIGEST,
    Person,
    SignedJob,
    enroll,
    publish,
    published_job,
    register,
    signed_job,
    submit,
)

OTHER = "sha256:" + "ef" * 32


@pytest.fixture
def world(ledger: Ledger) -> SignedJob:
    return published_job(ledger)


def _item(ledger: Ledger, seq: int, size: int) -> dict[str, Any]:
    """A receipt item for entry ``seq``, proved at tree size ``size``."""
    (entry,) = ledger.entries(seq, 1)
    return {
        "index": seq,
        "entry": base64.b64encode(entry.canonical_bytes()).decode(),
        "proof": [base64.b64encode(h).decode() for h in ledger.inclusion_proof(seq, size)],
    }


def test_a_jobs_receipt_names_who_published_its_data_on_which_host(world: SignedJob) -> None:
    receipt = world.ledger.receipt(world.job)
    assert receipt["dataset"]["index"] == world.published
    check = verify_receipt(receipt, world.ledger.public_key())
    publication = check.publication
    assert publication is not None
    assert (publication.seq, publication.dataset, publication.digest) == (
        world.published,
        "patients",
        DIGEST,
    )
    assert (publication.publisher, publication.host) == ("alice", "h1")
    assert (publication.host_key, publication.host_checked) == (world.host.fingerprint, True)
    verdicts = [(c.type, c.verdict, c.signer, c.key) for c in check.actions]
    assert verdicts[0] == ("dataset.registered", "signed", "alice", world.alice.fingerprint)
    # The publisher's user.key and the host's enrollment come with it.
    assert {(e.type, e.actor) for e in check.keys} >= {
        ("user.key", "alice"),
        ("host.enrolled", "host:h1"),
    }


def test_the_newest_registration_of_that_digest_before_the_submit_is_the_one(
    ledger: Ledger,
) -> None:
    alice, host = Person("alice"), Person("h1")
    world = SignedJob(ledger, Person("bob"), alice, host)
    for person in (world.bob, alice):
        register(ledger, person)
    enroll(ledger, host)
    publish(ledger, alice, host)
    newest = publish(ledger, alice, host)
    publish(ledger, alice, host, OTHER)  # another digest: not the job's data
    submit(ledger, world.bob, "job-7")
    publish(ledger, alice, host)  # after the submit: not what the job ran on
    receipt = ledger.receipt("job-7")
    assert receipt["dataset"]["index"] == newest


def test_a_receipt_without_the_publication_still_verifies_and_covers_none(
    world: SignedJob,
) -> None:
    receipt = {k: v for k, v in world.ledger.receipt(world.job).items() if k != "dataset"}
    check = verify_receipt(receipt, world.ledger.public_key())
    assert (check.dataset, check.publication) == (None, None)
    assert "dataset.registered" not in [c.type for c in check.actions]


def test_a_job_on_data_never_registered_gets_a_receipt_without_one(ledger: Ledger) -> None:
    world = signed_job(ledger)
    receipt = ledger.receipt(world.job)
    assert "dataset" not in receipt
    assert verify_receipt(receipt, ledger.public_key()).publication is None


def test_a_receipt_whose_dataset_entry_registered_another_digest_fails_naming_it(
    ledger: Ledger,
) -> None:
    bob, alice, host = Person("bob"), Person("alice"), Person("h1")
    for person in (bob, alice):
        register(ledger, person)
    enroll(ledger, host)
    publish(ledger, alice, host)
    other = publish(ledger, alice, host, OTHER)  # before the submit, of other data
    submit(ledger, bob, "job-7")
    receipt = copy.deepcopy(ledger.receipt("job-7"))  # signed at the log's size
    receipt["dataset"] = _item(ledger, other, ledger.size())
    with pytest.raises(
        VerificationError, match=rf"digest '{OTHER}', but entry \d+ \(job.submitted"
    ):
        verify_receipt(receipt, ledger.public_key())


def test_a_registration_after_the_submit_or_of_another_dataset_is_refused(
    world: SignedJob,
) -> None:
    later = publish(world.ledger, world.alice, world.host)
    elsewhere = publish(world.ledger, world.alice, world.host, dataset="other")
    receipt = copy.deepcopy(world.ledger.receipt(world.job))  # signed at the log's size
    size = world.ledger.size()
    for seq, why in [(later, "comes after the job's submit"), (elsewhere, "about 'dataset:other'")]:
        receipt["dataset"] = _item(world.ledger, seq, size)
        with pytest.raises(VerificationError, match=why):
            verify_receipt(receipt, world.ledger.public_key())


def test_a_publication_recorded_with_other_files_than_the_host_signed_is_caught(
    ledger: Ledger,
) -> None:
    """Written into the log itself (proofs hold): only the rebuilt host statement shows it."""
    bob, alice, host = Person("bob"), Person("alice"), Person("h1")
    for person in (bob, alice):
        register(ledger, person)
    enroll(ledger, host)
    seq = publish(ledger, alice, host)
    (entry,) = ledger.entries(seq, 1)
    ledger.append("dataset.registered", "alice", "dataset:patients", {**entry.body, "files": 9})
    submit(ledger, bob, "job-8")
    with pytest.raises(VerificationError, match="does not hash to the host statement digest"):
        verify_receipt(ledger.receipt("job-8"), ledger.public_key())


def test_the_whole_log_counts_a_signed_publication(world: SignedJob) -> None:
    report = world.ledger.verify()
    assert (report.ok, report.signed, report.unsigned) == (True, 5, 0)


def test_an_unsigned_publication_is_the_operators_word(ledger: Ledger) -> None:
    alice, host = Person("alice"), Person("h1")
    enroll(ledger, host)
    publish(ledger, alice, host, unsigned=True)
    report = ledger.verify()
    assert (report.ok, report.signed, report.unsigned) == (True, 0, 1)


@pytest.mark.parametrize(
    ("forge", "why"),
    [
        ("mallory", "is mallory's, not alice's"),
        ("replayed", "statement's digest is 'sha256:abab"),
    ],
    ids=["another person's key", "her signature over another digest"],
)
def test_a_forged_publication_is_caught_by_receipt_and_whole_log_verify(
    world: SignedJob, forge: str, why: str
) -> None:
    if forge == "mallory":
        mallory = Person("mallory")
        register(world.ledger, mallory)
        seq = publish(world.ledger, world.alice, world.host, OTHER, signer=mallory)
    else:
        # Her real envelope from the honest registration, on an entry naming other data.
        (honest,) = world.ledger.entries(world.published or 0, 1)
        seq = publish(world.ledger, world.alice, world.host, OTHER)
        (forged,) = world.ledger.entries(seq, 1)
        body = {**forged.body, "signed": honest.body["signed"]}
        seq = world.ledger.append("dataset.registered", "alice", "dataset:patients", body).seq
    report = world.ledger.verify()
    assert (report.ok, report.first_bad) == (False, seq)
    assert f"entry {seq} (dataset.registered)" in report.detail
    assert why in report.detail
