"""``python -m ledger``: one JSON document on stdout, exit 0 when verified and 1 when not."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from ledger_testkit import fill

from ledger import Ledger
from ledger.__main__ import main
from ledger.keys import public_key_path


@pytest.fixture
def logged(ledger: Ledger) -> Ledger:
    fill(ledger, 9)
    ledger.checkpoint()
    return ledger


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object], str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def test_verify_prints_a_json_report(logged: Ledger, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ledger", "verify", str(logged.db_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is True
    assert report["entries"] == 9
    assert report["first_bad"] is None
    assert report["root"] == logged.root().hex()


def test_verify_with_a_trusted_key_and_a_kept_checkpoint(
    logged: Ledger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kept = tmp_path / "kept.note"
    kept.write_text(logged.checkpoint())
    key = public_key_path(tmp_path / "ledger.key")
    code, report, _ = run(
        capsys, "verify", str(logged.db_path), "--key", str(key), "--checkpoint", str(kept)
    )
    assert (code, report["ok"], report["checkpoints"]) == (0, True, 2)


def test_verify_exits_1_and_names_the_bad_entry(
    logged: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    conn = sqlite3.connect(logged.db_path)
    conn.execute("DELETE FROM ledger_entries WHERE seq = 4")
    conn.commit()
    conn.close()
    code, report, err = run(capsys, "verify", str(logged.db_path))
    assert (code, report["ok"], report["first_bad"]) == (1, False, 4)
    assert "entry 4 is missing" in err


def test_a_missing_database_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, report, err = run(capsys, "verify", str(tmp_path / "nope.db"))
    assert (code, report["ok"]) == (3, False)
    assert "no ledger database" in err


def test_receipt_verification(
    logged: Ledger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(logged.receipt("job-1")))
    key = public_key_path(tmp_path / "ledger.key")
    code, summary, _ = run(capsys, "receipt", str(path), "--key", str(key))
    assert (code, summary["ok"], summary["subject"]) == (0, True, "job-1")
    assert [e["seq"] for e in summary["entries"]] == [1, 4, 7]  # type: ignore[attr-defined]

    stranger = tmp_path / "stranger.pub"
    stranger.write_text("A" * 43 + "=\n")
    code, summary, err = run(capsys, "receipt", str(path), "--key", str(stranger))
    assert (code, summary["ok"]) == (1, False)
    assert "another key" in err

    path.write_text("{")
    code, summary, _ = run(capsys, "receipt", str(path), "--key", str(key))
    assert (code, summary["ok"]) == (2, False)
