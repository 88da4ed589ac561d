"""`c2d ledger verify --since FILE --home DIR`: the offline check of a kept checkpoint.

The state folder's database is verified whole with the kept checkpoint among the roots it
must match; an honest log that grew passes, one the operator rewrote and re-signed fails
naming the entries, and a kept file that is missing, corrupt or of another key is an error
with its exit code, changing nothing. (Over HTTP: tests/integration/test_ledger_consistency.py.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger import Ledger
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.keys import load_or_create_signing_key
from runner.cli.main import run
from tests.kit.rewrite import rewrite_history

ORIGIN = "c2d.test/since"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("C2D_URL", "C2D_TOKEN", "C2D_HOME", "C2D_ORIGIN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("C2D_CONFIG", str(tmp_path / "no-config.json"))
    folder = tmp_path / "home"
    folder.mkdir()
    with Ledger(folder / "c2d.db", folder / "ledger.key", ORIGIN) as ledger:
        for i in range(6):
            ledger.append("job.submitted", "rita", f"job-{i}", {"n": i})
        (tmp_path / "kept.checkpoint").write_text(ledger.checkpoint())
        for i in range(6, 9):
            ledger.append("job.submitted", "rita", f"job-{i}", {"n": i})
    return folder


def since(home: Path, kept: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run(["ledger", "verify", "--since", str(kept), "--home", str(home), "--json"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_log_that_grew_extends_the_kept_checkpoint(home, tmp_path, capsys) -> None:
    code, out, said = since(home, tmp_path / "kept.checkpoint", capsys)
    assert code == 0, said
    facts = json.loads(out)
    assert facts["ok"] is True
    assert (facts["kept_size"], facts["size"], facts["origin"]) == (6, 9, ORIGIN)
    assert "extends the checkpoint you kept at size 6" in said


def test_a_rewritten_entry_fails_and_is_named(home, tmp_path, capsys) -> None:
    kept = tmp_path / "kept.checkpoint"
    before = kept.read_bytes()
    rewrite_history(home / "c2d.db", home / "ledger.key", ORIGIN, seq=3, body={"n": "x"})
    code, out, said = since(home, kept, capsys)
    assert code == 1
    facts = json.loads(out)
    assert facts["ok"] is False
    assert facts["kept_size"] == 6
    assert f"checked against the checkpoint in {kept}" in said
    assert "the checkpoint you kept at size 6 does not match the log" in said
    assert "first bad entry: 0" in said
    assert kept.read_bytes() == before


def test_a_shorter_log_fails(home, tmp_path, capsys) -> None:
    rewrite_history(home / "c2d.db", home / "ledger.key", ORIGIN, keep=4)
    code, _, said = since(home, tmp_path / "kept.checkpoint", capsys)
    assert code == 1
    assert "covers 6 entries but the log holds 4" in said


def test_bad_kept_files_are_errors_with_their_exit_codes(home, tmp_path, capsys) -> None:
    assert since(home, tmp_path / "missing", capsys)[0] == 3
    corrupt = tmp_path / "corrupt.checkpoint"
    corrupt.write_text("c2d.test/since\nsix\n")
    code, _, said = since(home, corrupt, capsys)
    assert code == 2
    assert "is not a signed checkpoint" in said
    with Ledger(home / "c2d.db", home / "ledger.key", ORIGIN) as ledger:
        root = ledger.root(6)
    stranger = load_or_create_signing_key(tmp_path / "stranger.key")
    forged = tmp_path / "forged.checkpoint"
    forged.write_text(sign_checkpoint(Checkpoint(ORIGIN, 6, root), stranger))
    code, _, said = since(home, forged, capsys)
    assert code == 2
    assert "does not verify against this log's key" in said
