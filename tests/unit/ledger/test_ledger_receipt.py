"""Receipts: built by the log, verified offline with only the receipt and the public key."""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from ledger_testkit import ORIGIN, fill

from ledger import (
    RECEIPT_FORMAT,
    BadCheckpoint,
    BadReceipt,
    Ledger,
    LedgerError,
    VerificationError,
    verify_receipt,
)
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.entry import GENESIS_PREV, Entry
from ledger.keys import raw_public_key
from ledger.merkle import inclusion_proof, leaf_hash, root_of, subtree_of
from ledger.receipt import build_receipt


@pytest.fixture
def job_ledger(ledger: Ledger) -> Ledger:
    """A log where job-7 has five entries, three of them back to back."""
    fill(ledger, 5)
    ledger.append("job.submitted", "alice", "job-7", {"code": "sha256:" + "aa" * 32})
    fill(ledger, 3)
    ledger.append_many(
        [
            ("job.approved", "owner", "job-7", {"policy": False}),
            ("job.started", "worker", "job-7", {"host": "data-1"}),
            ("job.finished", "worker", "job-7", {"exit_code": 0, "outputs": ["model.skops"]}),
        ]
    )
    fill(ledger, 2)
    ledger.append("job.released", "owner", "job-7", {})
    return ledger


@pytest.fixture
def receipt(job_ledger: Ledger) -> dict[str, Any]:
    # What a researcher holds: a JSON file, read back.
    return json.loads(json.dumps(job_ledger.receipt("job-7")))


def test_a_receipt_verifies_offline_with_only_the_public_key(
    receipt: dict[str, Any], job_ledger: Ledger
) -> None:
    key = base64.b64decode(receipt["log"]["public_key"])
    assert key == job_ledger.public_key()
    check = verify_receipt(receipt, job_ledger.public_key(), origin=ORIGIN)
    assert check.subject == "job-7"
    assert check.origin == ORIGIN
    assert check.size == job_ledger.size() == 15
    assert [e.type for e in check.entries] == [
        "job.submitted",
        "job.approved",
        "job.started",
        "job.finished",
        "job.released",
    ]
    assert [e.seq for e in check.entries] == [5, 9, 10, 11, 14]
    assert check.entries == tuple(job_ledger.entries_for("job-7"))


def test_a_receipt_has_exactly_the_documented_fields(receipt: dict[str, Any]) -> None:
    assert set(receipt) == {"format", "subject", "log", "checkpoint", "entries", "keys"}
    assert receipt["format"] == RECEIPT_FORMAT == "c2d-receipt/2"
    assert set(receipt["log"]) == {"origin", "public_key"}
    assert len(base64.b64decode(receipt["log"]["public_key"])) == 32
    for item in receipt["entries"]:
        assert set(item) == {"index", "entry", "proof"}
        assert all(len(base64.b64decode(h)) == 32 for h in item["proof"])


def test_an_older_receipt_still_verifies_after_the_log_grows(
    receipt: dict[str, Any], job_ledger: Ledger
) -> None:
    fill(job_ledger, 40)
    job_ledger.checkpoint()
    assert verify_receipt(receipt, job_ledger.public_key()).size == 15
    # A new receipt uses the latest checkpoint that covers the job instead of signing again.
    assert job_ledger.receipt("job-7")["checkpoint"] == job_ledger.latest_checkpoint()


def _flip_base64(text: str) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[len(raw) // 2] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def _reencoded_entry(text: str) -> str:
    old = Entry.from_canonical(base64.b64decode(text))
    forged = Entry.create(**(old.model_dump() | {"body": {"exit_code": 0, "forged": True}}))
    return base64.b64encode(forged.canonical_bytes()).decode()


Tamper = Callable[[dict[str, Any]], None]
TAMPERS: dict[str, tuple[Tamper, type[LedgerError], str]] = {
    "format": (lambda r: r.update(format="c2d-receipt/3"), BadReceipt, "format"),
    "subject": (lambda r: r.update(subject="job-8"), VerificationError, "not 'job-8'"),
    "origin": (
        lambda r: r["log"].update(origin="elsewhere.example/log"),
        VerificationError,
        "for log 'c2d.test/ledger', not 'elsewhere.example/log'",
    ),
    "public key": (
        lambda r: r["log"].update(public_key=_flip_base64(r["log"]["public_key"])),
        VerificationError,
        "another key",
    ),
    "checkpoint size": (
        lambda r: r.update(checkpoint=r["checkpoint"].replace("\n15\n", "\n16\n")),
        VerificationError,
        "does not verify",
    ),
    "checkpoint text": (lambda r: r.update(checkpoint="hello\n"), BadCheckpoint, "signed note"),
    "entry index": (
        lambda r: r["entries"][1].update(index=8),
        VerificationError,
        "claims index 8",
    ),
    "entry bytes": (
        lambda r: r["entries"][3].update(entry=_flip_base64(r["entries"][3]["entry"])),
        VerificationError,
        "inclusion proof for leaf 11 of 15",
    ),
    "entry garbage": (
        lambda r: r["entries"][3].update(entry=base64.b64encode(b"{not json").decode()),
        BadReceipt,
        "receipt entry 3 is not a ledger entry",
    ),
    "entry re-encoded": (
        lambda r: r["entries"][3].update(entry=_reencoded_entry(r["entries"][3]["entry"])),
        VerificationError,
        "inclusion proof for leaf 11 of 15",
    ),
    "proof hash": (
        lambda r: r["entries"][0]["proof"].__setitem__(
            0, _flip_base64(r["entries"][0]["proof"][0])
        ),
        VerificationError,
        "inclusion proof for leaf 5 of 15",
    ),
    "proof shortened": (
        lambda r: r["entries"][2]["proof"].pop(),
        VerificationError,
        "fewer than a tree",
    ),
    "entries swapped": (
        lambda r: r["entries"].reverse(),
        VerificationError,
        "out of order",
    ),
    "entry duplicated": (
        lambda r: r["entries"].append(copy.deepcopy(r["entries"][-1])),
        VerificationError,
        "out of order",
    ),
    "extra field": (lambda r: r.update(note="trust me"), BadReceipt, "note"),
}


@pytest.mark.parametrize("name", list(TAMPERS))
def test_tampering_with_any_field_fails(receipt: dict[str, Any], name: str, ledger: Ledger) -> None:
    change, error, message = TAMPERS[name]
    forged = copy.deepcopy(receipt)
    change(forged)
    with pytest.raises(error, match=re.escape(message)):
        verify_receipt(forged, ledger.public_key())


def test_an_entry_of_another_job_cannot_be_slipped_in(
    receipt: dict[str, Any], job_ledger: Ledger
) -> None:
    other = job_ledger.receipt("job-0")["entries"][0]
    forged = copy.deepcopy(receipt)
    forged["entries"].insert(0, other)
    with pytest.raises(VerificationError, match="about 'job-0', not 'job-7'"):
        verify_receipt(forged, job_ledger.public_key())


def test_a_receipt_checked_with_the_wrong_key_fails(receipt: dict[str, Any]) -> None:
    stranger = raw_public_key(Ed25519PrivateKey.generate())
    with pytest.raises(VerificationError, match="another key than the one you trust"):
        verify_receipt(receipt, stranger)


def test_a_receipt_from_another_log_fails_when_the_origin_is_pinned(
    receipt: dict[str, Any], job_ledger: Ledger
) -> None:
    with pytest.raises(VerificationError, match=re.escape("not 'c2d.example/production'")):
        verify_receipt(receipt, job_ledger.public_key(), origin="c2d.example/production")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "not a c2d-receipt/1 or c2d-receipt/2 receipt"),
        ({}, "format"),
        ({"format": "c2d-receipt/1"}, "subject"),
        ("receipt", "not a c2d-receipt/1 or c2d-receipt/2 receipt"),
    ],
)
def test_a_malformed_receipt_is_refused_clearly(document: Any, message: str) -> None:
    with pytest.raises(BadReceipt, match=message) as caught:
        verify_receipt(document, bytes(32))
    assert caught.value.kind == "invalid"


def test_a_receipt_without_entries_or_with_bad_base64_is_refused(
    receipt: dict[str, Any], job_ledger: Ledger
) -> None:
    empty = copy.deepcopy(receipt) | {"entries": []}
    with pytest.raises(BadReceipt, match="entries"):
        verify_receipt(empty, job_ledger.public_key())
    proof = receipt["entries"][0]["proof"][0]
    for bad in ("***", proof[:-1], proof + "=", " " + proof, proof[:20] + "\n" + proof[20:]):
        garbled = copy.deepcopy(receipt)
        garbled["entries"][0]["proof"][0] = bad
        with pytest.raises(BadReceipt, match=r"entries\.0\.proof is not base64"):
            verify_receipt(garbled, job_ledger.public_key())
    garbled = copy.deepcopy(receipt)
    garbled["entries"][0]["entry"] = "=" + garbled["entries"][0]["entry"]
    with pytest.raises(BadReceipt, match=r"entries\.0\.entry is not base64"):
        verify_receipt(garbled, job_ledger.public_key())


def test_a_log_that_breaks_its_own_chain_is_caught_by_the_receipt() -> None:
    """A dishonest log signs a tree whose adjacent entries do not link; the receipt says so."""
    key = Ed25519PrivateKey.generate()
    first = Entry.create(
        seq=0,
        prev=GENESIS_PREV,
        time="2025-01-01T00:00:00.000000Z",
        type="job.submitted",
        actor="alice",
        subject="job-1",
        body={},
    )
    unlinked = Entry.create(
        seq=1,
        prev="11" * 32,
        time="2025-01-01T00:00:01.000000Z",
        type="job.approved",
        actor="owner",
        subject="job-1",
        body={},
    )
    data = [first.canonical_bytes(), unlinked.canonical_bytes()]
    leaves = [leaf_hash(d) for d in data]
    note = sign_checkpoint(Checkpoint(ORIGIN, 2, root_of(leaves)), key)
    items = [(i, d, inclusion_proof(i, 2, subtree_of(leaves))) for i, d in enumerate(data)]
    receipt = build_receipt("job-1", ORIGIN, raw_public_key(key), note, items)
    with pytest.raises(VerificationError, match="entry 1 does not link to entry 0"):
        verify_receipt(receipt, raw_public_key(key))
