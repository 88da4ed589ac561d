"""The one mapping from error kinds to exit codes, and `run` applying it to real situations.

Each test drives `runner.cli.main.run` in this process with real inputs (a real ledger, a real
job folder, a closed port); the end-to-end tests repeat the API-backed ones through processes.
"""

from __future__ import annotations

import base64
import json
import socket
import sqlite3
from pathlib import Path

import pytest
import rfc8785
from cli_ledger_fixture import SmallLog

import jobs.errors
import ledger.errors
import runner.errors
from ledger.kinds import EXIT_CODE, ErrorKind, ExitCode, exit_code_for
from runner.cli.main import run
from runner.client.config import DEFAULT_URL, ClientConfig, save_config
from runner.errors import HTTP_STATUS

KINDS = {
    "invalid": 2,
    "not_found": 3,
    "not_allowed": 4,
    "unauthenticated": 4,
    "conflict": 2,
    "too_large": 2,
    "unavailable": 5,
    "failed": 1,
}


@pytest.fixture(autouse=True)
def _no_client_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("C2D_URL", "C2D_TOKEN", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("C2D_CONFIG", str(tmp_path / "no-config.json"))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _subclasses(base: type) -> list[type]:
    found = [base]
    for sub in base.__subclasses__():
        found += _subclasses(sub)
    return found


def test_the_mapping_is_the_documented_one() -> None:
    assert {str(k): int(v) for k, v in EXIT_CODE.items()} == KINDS
    assert exit_code_for("something new") == ExitCode.FAILED


def test_every_kind_has_one_exit_code_and_one_http_status() -> None:
    assert set(EXIT_CODE) == set(ErrorKind) == set(HTTP_STATUS)


@pytest.mark.parametrize(
    "base", [runner.errors.RunnerError, jobs.errors.JobsError, ledger.errors.LedgerError]
)
def test_every_error_class_has_a_mapped_kind(base: type) -> None:
    for cls in _subclasses(base):
        assert isinstance(cls.kind, ErrorKind), cls  # one vocabulary, no stray strings
        assert cls.kind in EXIT_CODE, cls


def test_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for phrase in ("0 ok", "1 the job failed", "2 usage", "3 not found", "4 not allowed", "5 a"):
        assert phrase in text


@pytest.mark.parametrize(
    "argv",
    [
        ["nonsense"],
        ["submit"],
        ["user", "add", "bob", "--role", "king"],
        ["jobs", "--state"],
        ["dataset", "add", "only-name"],
        ["--timeout", "0", "jobs"],
        # Notes and reasons are short plain text, refused before anything is sent.
        ["approve", "abc123", "--note", "x" * 2001],
        ["reject", "abc123", "--reason", "fine\x1b[2Jreally"],
        ["cancel", "abc123", "--reason", "x" * 2001],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert run(argv) == ExitCode.USAGE
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Error" in captured.err


def test_a_bad_param_exits_2(tmp_path: Path) -> None:
    assert run(["submit", str(tmp_path), "--param", "novalue"]) == ExitCode.USAGE


def test_no_token_exits_4(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["jobs"]) == ExitCode.NOT_ALLOWED
    assert "c2d login" in capsys.readouterr().err


def test_an_unreachable_api_exits_5_with_one_json_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    assert run(["--url", url, "--token", "t", "jobs", "--json"]) == ExitCode.UNAVAILABLE
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert document["error"]["kind"] == "unavailable"
    assert document["error"]["exit_code"] == 5
    assert url in captured.err
    assert "c2d server" in captured.err


def test_a_job_spec_error_names_file_field_and_allowed_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "job.yaml").write_text("name: train\ncommand: []\n")
    assert run(["submit", str(tmp_path), "--dataset", "d", "--json"]) == ExitCode.USAGE
    captured = capsys.readouterr()
    error = json.loads(captured.out)["error"]
    assert error["field"] == "command"
    assert error["file"].endswith("job.yaml")
    assert "list of strings" in error["allowed"]
    assert "job.yaml" in captured.err
    assert "command" in captured.err


def test_a_missing_dataset_is_a_spec_error(tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text("name: train\ncommand: [python, t.py]\n")
    assert run(["submit", str(tmp_path)]) == ExitCode.USAGE


def _write_receipt(small_log: SmallLog, folder: Path) -> tuple[Path, Path]:
    receipt = folder / "receipt.json"
    receipt.write_text(json.dumps(small_log.ledger.receipt("job-1")))
    key = folder / "ledger.pub"
    key.write_text(base64.b64encode(small_log.key).decode())
    return receipt, key


def test_a_good_receipt_verifies_offline(
    small_log: SmallLog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    receipt, key = _write_receipt(small_log, tmp_path)
    assert run(["receipt", "verify", str(receipt), "--key", str(key), "--json"]) == 0
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert document["ok"] is True
    assert document["subject"] == "job-1"
    assert [e["type"] for e in document["entries"]] == [
        "job.submitted",
        "job.approved",
        "job.finished",
        "job.released",
    ]
    assert captured.err.startswith("ok:")


@pytest.mark.parametrize("how", ["edit-entry", "not-json", "other-key"])
def test_a_tampered_receipt_exits_1(small_log: SmallLog, tmp_path: Path, how: str) -> None:
    receipt, key = _write_receipt(small_log, tmp_path)
    document = json.loads(receipt.read_text())
    if how == "edit-entry":
        entry = json.loads(base64.b64decode(document["entries"][2]["entry"]))
        entry["body"]["outputs_digest"] = "sha256:" + "f" * 64
        document["entries"][2]["entry"] = base64.b64encode(rfc8785.dumps(entry)).decode()
        receipt.write_text(json.dumps(document))
    elif how == "not-json":
        receipt.write_text(receipt.read_text()[:-10])
    else:
        key.write_text(base64.b64encode(b"\x07" * 32).decode())
    assert run(["receipt", "verify", str(receipt), "--key", str(key)]) == ExitCode.FAILED


def test_a_receipt_verifies_against_the_key_pinned_at_login(
    small_log: SmallLog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    receipt, _ = _write_receipt(small_log, tmp_path)
    args = ["receipt", "verify", str(receipt)]
    assert run(args) == ExitCode.USAGE  # no --key and nothing pinned: says what to pass
    config = tmp_path / "config.json"
    monkeypatch.setenv("C2D_CONFIG", str(config))
    for pinned, code in ((small_log.key, 0), (b"\x07" * 32, ExitCode.FAILED)):
        saved = ClientConfig(
            url=DEFAULT_URL, token="t", public_key=base64.b64encode(pinned).decode()
        )
        save_config(config, saved)
        assert run(args) == code  # the key comes from the file; no request is made


def test_a_missing_receipt_exits_3(small_log: SmallLog, tmp_path: Path) -> None:
    _, key = _write_receipt(small_log, tmp_path)
    assert run(["receipt", "verify", str(tmp_path / "nope.json"), "--key", str(key)]) == 3


def test_a_local_ledger_verifies_and_a_tampered_one_exits_1(
    small_log: SmallLog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["ledger", "verify", "--home", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    small_log.ledger.close()
    with sqlite3.connect(tmp_path / "c2d.db") as db:
        db.execute("UPDATE ledger_entries SET canonical = CAST(? AS BLOB) WHERE seq = 1", ("{}",))
    assert run(["ledger", "verify", "--home", str(tmp_path), "--json"]) == ExitCode.FAILED
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is False
    assert document["first_bad"] == 1
    assert set(document) >= {"ok", "entries", "first_bad", "detail"}
