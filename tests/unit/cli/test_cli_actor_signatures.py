"""`c2d receipt verify` and `c2d ledger verify --home` on a log whose actions carry people's and a
host's signatures: the words a person reads, the JSON a script reads, and exit 1 naming the
entry for a forged approval. A real state folder (`c2d init`), real Ed25519 keys, the entries
appended as the operator's ledger would (`tests.kit.signed_log`)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from ledger import Ledger
from runner.cli.main import run
from runner.settings import Settings
from tests.kit.signed_log import (
    DIGEST,
    Person,
    approve,
    decision_statement,
    enroll,
    publish,
    published_job,
    register,
    signed_job,
    submit,
)

ORIGIN = "c2d.test/cli"
OTHER = "sha256:" + "ef" * 32


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("C2D_URL", "C2D_TOKEN", "C2D_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("C2D_CONFIG", str(tmp_path / "no-config.json"))
    monkeypatch.setenv("C2D_ORIGIN", ORIGIN)
    folder = tmp_path / "home"
    assert run(["init", "--home", str(folder), "--no-local-host", "--json"]) == 0
    return folder


@pytest.fixture
def log(home: Path) -> Ledger:
    settings = Settings(home=home, origin=ORIGIN)
    ledger = Ledger(settings.db_path, settings.key_path, ORIGIN)
    yield ledger
    ledger.close()


def _receipt(log: Ledger, job: str, tmp_path: Path) -> Path:
    path = tmp_path / f"{job}.receipt.json"
    path.write_text(json.dumps(log.receipt(job)))
    return path


def _key(home: Path) -> str:
    return str(home / "ledger.key.pub")


def test_receipt_verify_says_who_did_what_with_which_key(
    home: Path, log: Ledger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = published_job(log)
    receipt = _receipt(log, world.job, tmp_path)
    capsys.readouterr()
    assert run(["receipt", "verify", str(receipt), "--key", _key(home)]) == 0
    err = capsys.readouterr().err
    bob, alice = world.bob.fingerprint[8:16], world.alice.fingerprint[8:16]
    host = world.host.fingerprint[8:16]
    assert (
        f"submitted by bob (key {bob}…), approved by alice (key {alice}…), ran on host h1 "
        f"(key {host}…), released by alice (key {alice}…), on dataset patients (digest "
        f"{DIGEST[:19]}…) published by alice (key {alice}…) on host h1 (key {host}…); in log "
        f"{ORIGIN} at size "
    ) in err


def test_a_receipt_without_the_publication_says_it_is_not_covered(
    home: Path, log: Ledger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = signed_job(log)  # its dataset was never registered in this log
    receipt = _receipt(log, world.job, tmp_path)
    capsys.readouterr()
    assert run(["receipt", "verify", str(receipt), "--key", _key(home), "--json"]) == 0
    captured = capsys.readouterr()
    assert "released by alice (key " in captured.err
    assert "the dataset's publication is not covered by this receipt; in log" in captured.err
    document = json.loads(captured.out)
    assert (document["publication"], document["dataset"]) == (None, None)


def test_a_receipt_whose_publication_names_other_data_fails(
    home: Path, log: Ledger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bob, alice, host = Person("bob"), Person("alice"), Person("h1")
    for person in (bob, alice):
        register(log, person)
    enroll(log, host)
    publish(log, alice, host)
    other = publish(log, alice, host, OTHER)  # before the submit, of other data
    submit(log, bob, "job-7")
    receipt = log.receipt("job-7")  # signed at the log's size
    # The operator swaps in the registration of the other data, with its true proof.
    (entry,) = log.entries(other, 1)
    receipt["dataset"] = {
        "index": other,
        "entry": base64.b64encode(entry.canonical_bytes()).decode(),
        "proof": [base64.b64encode(h).decode() for h in log.inclusion_proof(other, log.size())],
    }
    path = tmp_path / "swapped.json"
    path.write_text(json.dumps(receipt))
    capsys.readouterr()
    assert run(["receipt", "verify", str(path), "--key", _key(home)]) == 1
    err = capsys.readouterr().err
    assert f"registered dataset 'patients' with digest '{OTHER}'" in err
    assert f"binds '{DIGEST}'" in err


def test_receipt_verify_json_gives_the_same_facts(
    home: Path, log: Ledger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = signed_job(log)
    receipt = _receipt(log, world.job, tmp_path)
    capsys.readouterr()
    assert run(["receipt", "verify", str(receipt), "--key", _key(home), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["format"] == "c2d-receipt/2"
    assert document["publication"] is None
    assert [(a["type"], a["verdict"], a["signer"], a["key"]) for a in document["actions"]] == [
        ("job.submitted", "signed", "bob", world.bob.fingerprint),
        ("job.approved", "signed", "alice", world.alice.fingerprint),
        ("job.finished", "signed", "host:h1", world.host.fingerprint),
        ("job.released", "signed", "alice", world.alice.fingerprint),
    ]


def test_an_unsigned_action_is_marked_as_the_operators_word(
    home: Path, log: Ledger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    approve(log, "alice", "job-9", None)
    receipt = _receipt(log, "job-9", tmp_path)
    capsys.readouterr()
    assert run(["receipt", "verify", str(receipt), "--key", _key(home)]) == 0
    assert "approved by alice (unsigned: the operator's word)" in capsys.readouterr().err


def test_a_forged_approval_fails_both_verifies_naming_the_entry(
    home: Path, log: Ledger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = signed_job(log)
    mallory = Person("mallory")
    register(log, mallory)
    forged = mallory.envelope(decision_statement(log, world.alice, "job-2"))
    seq = approve(log, "alice", "job-2", forged)
    receipt = _receipt(log, "job-2", tmp_path)
    capsys.readouterr()
    assert run(["receipt", "verify", str(receipt), "--key", _key(home)]) == 1
    assert f"entry {seq} (job.approved)" in capsys.readouterr().err
    assert run(["ledger", "verify", "--home", str(home), "--key", _key(home), "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert (document["ok"], document["first_bad"]) == (False, seq)
    assert "is mallory's, not alice's" in document["detail"]


def test_ledger_verify_counts_signed_and_unsigned_actions(
    home: Path, log: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    signed_job(log)
    approve(log, "alice", "job-2", None)
    capsys.readouterr()
    assert run(["ledger", "verify", "--home", str(home), "--key", _key(home)]) == 0
    assert "4 actions signed, 1 unsigned" in capsys.readouterr().err


def test_receipt_verify_json_names_the_publication(
    home: Path, log: Ledger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = published_job(log)
    receipt = _receipt(log, world.job, tmp_path)
    capsys.readouterr()
    assert run(["receipt", "verify", str(receipt), "--key", _key(home), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["publication"] == {
        "seq": world.published,
        "dataset": "patients",
        "digest": DIGEST,
        "publisher": "alice",
        "host": "h1",
        "host_key": world.host.fingerprint,
        "host_checked": True,
        "verdict": "signed",
        "key": world.alice.fingerprint,
    }
    assert document["dataset"]["seq"] == world.published


def test_a_forged_publication_fails_ledger_verify_naming_the_entry(
    home: Path, log: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    world = published_job(log)
    mallory = Person("mallory")
    register(log, mallory)
    seq = publish(log, world.alice, world.host, signer=mallory)
    capsys.readouterr()
    assert run(["ledger", "verify", "--home", str(home), "--key", _key(home), "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert (document["ok"], document["first_bad"]) == (False, seq)
    assert f"entry {seq} (dataset.registered)" in document["detail"]
    assert "is mallory's, not alice's" in document["detail"]
