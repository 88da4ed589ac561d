"""`c2d backup` and `c2d restore` as a script sees them: one JSON document on stdout, people's
lines on stderr, and the documented exit codes (2 for a folder that holds something, 1 for a
backup that does not match). Driven through `runner.cli.main.run` in this process, on a real
state folder that `c2d init` made."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from runner.cli.main import run


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("C2D_URL", "C2D_TOKEN", "C2D_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("C2D_CONFIG", str(tmp_path / "no-config.json"))
    monkeypatch.setenv("C2D_ORIGIN", "c2d.test/cli")
    folder = tmp_path / "home"
    assert run(["init", "--home", str(folder), "--no-local-host", "--json"]) == 0
    return folder


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict, str]:
    capsys.readouterr()
    code = run([*args, "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def test_backup_and_restore_print_one_document_each(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, written, err = run_json(capsys, "backup", str(tmp_path / "bk"), "--home", str(home))
    assert code == 0
    assert written["path"] == str(tmp_path / "bk")
    assert written["private_key"] is False
    assert written["origin"] == "c2d.test/cli"
    assert "--include-key" in err
    code, restored, err = run_json(
        capsys, "restore", str(tmp_path / "bk"), "--home", str(tmp_path / "new")
    )
    assert code == 0
    assert restored["home"] == str(tmp_path / "new")
    assert restored["needs_key"] is True
    assert restored["ledger"]["ok"] is True
    assert restored["ledger_entries"] == written["ledger_entries"]
    assert "ledger.key (chmod 600)" in err


def test_the_key_only_when_asked_with_a_warning(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, written, err = run_json(
        capsys, "backup", str(tmp_path / "bk"), "--home", str(home), "--include-key"
    )
    assert code == 0
    assert written["private_key"] is True
    assert "warning: the backup will hold the ledger's private key" in err


def test_exit_2_for_a_folder_that_holds_something(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["backup", str(tmp_path / "bk"), "--home", str(home)]) == 0
    code, document, err = run_json(capsys, "backup", str(tmp_path / "bk"), "--home", str(home))
    assert code == 2
    assert document["error"]["kind"] == "conflict"
    code, document, err = run_json(capsys, "restore", str(tmp_path / "bk"), "--home", str(home))
    assert code == 2
    assert "is not empty" in document["error"]["message"]
    assert "--home" in err


def test_exit_1_for_a_backup_whose_ledger_was_edited(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["backup", str(tmp_path / "bk"), "--home", str(home)]) == 0
    with sqlite3.connect(tmp_path / "bk" / "c2d.db") as conn:
        conn.execute("UPDATE ledger_entries SET subject = 'forged' WHERE seq = 0")
    code, document, _ = run_json(
        capsys, "restore", str(tmp_path / "bk"), "--home", str(tmp_path / "new")
    )
    assert code == 1
    assert document["error"]["kind"] == "failed"
    assert "changed or damaged" in document["error"]["message"]
    assert not (tmp_path / "new").exists()


def test_a_backup_inside_the_state_folder_is_written_with_a_warning(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, written, err = run_json(capsys, "backup", str(home / "bk"), "--home", str(home))
    assert code == 0
    assert written["path"] == str(home / "bk")
    assert (home / "bk" / "manifest.json").is_file()
    assert "is lost with it" in err
