"""The client side of developing against unseen data: mock data from a schema document, the
owner's public columns on the command line, and how a dry run reads in review."""

from __future__ import annotations

import pytest
import typer

from jobs.errors import NotAllowed
from jobs.profile import profile_dataset
from runner.cli.datasets import parse_public
from runner.cli.views import dryrun_lines
from runner.client.mock import mock_from_schema

CANARY = "ZQX-canary-owl"
PUBLIC = {"visits/patients.csv": ["sex"]}


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    (folder / "visits").mkdir()
    rows = [f"P{n:04d},{20 + n % 60},{'FM'[n % 2]},Person{n:04d}" for n in range(200)]
    rows[77] = f"P0077,41,F,{CANARY}"
    text = "patient_id,age,sex,name\n" + "\n".join(rows) + "\n"
    (folder / "visits/patients.csv").write_text(text)
    return profile_dataset(folder, public=PUBLIC)


def _docs(profile, level: str):
    """The schema documents the API gives the owner and a researcher."""
    owner = {
        "schema": level,
        "full": True,
        "public_values": PUBLIC,
        "profile": profile.view(level, is_owner=True, public=PUBLIC),
    }
    researcher = {
        "schema": level,
        "full": False,
        "profile": profile.view(level, is_owner=False, public=PUBLIC),
    }
    return owner, researcher


@pytest.mark.parametrize("level", ["columns", "stats"])
def test_owner_and_researcher_get_the_same_mock_with_the_public_values(profile, tmp_path, level):
    owner, researcher = _docs(profile, level)
    mine = mock_from_schema(researcher, tmp_path / "r", rows=50, seed=4)
    theirs = mock_from_schema(owner, tmp_path / "o", rows=50, seed=4)
    assert mine.digest == theirs.digest
    text = (tmp_path / "r/visits/patients.csv").read_text()
    assert CANARY not in text
    assert ",F," in text or ",M," in text  # the public column keeps its real categories
    assert "name_1" in text  # the private text column is placeholders


def test_a_hidden_schema_makes_no_mock_for_researchers_and_columns_for_the_owner(profile, tmp_path):
    owner, researcher = _docs(profile, "hidden")
    with pytest.raises(NotAllowed, match="hidden"):
        mock_from_schema(researcher, tmp_path / "r", rows=5, seed=0)
    assert not (tmp_path / "r").exists()
    assert mock_from_schema(owner, tmp_path / "o", rows=5, seed=0).level == "columns"
    assert CANARY not in (tmp_path / "o/visits/patients.csv").read_text()


def test_public_columns_are_read_per_file_or_for_every_file() -> None:
    assert parse_public(["a.csv:x", "y", "dir/b.csv:z", "a.csv:w"]) == {
        "a.csv": ["x", "w"],
        "*": ["y"],
        "dir/b.csv": ["z"],
    }
    with pytest.raises(typer.BadParameter):
        parse_public(["a.csv:"])


def test_review_says_when_there_is_no_dry_run_yet_or_it_is_withheld() -> None:
    assert "not run yet" in str(dryrun_lines(None)[0][1])
    withheld = {"job_id": "j", "withheld": True, "note": "stays with its owner"}
    assert dryrun_lines(withheld) == [("dry run", "stays with its owner")]


def test_review_puts_a_failed_dry_run_and_what_it_did_not_leave_up_front() -> None:
    lines = dict(
        dryrun_lines(
            {
                "ok": False,
                "reason": "exited with code 1",
                "duration_s": 2.5,
                "declared": ["model.skops"],
                "produced": [],
                "missing": ["model.skops"],
                "mock_digest": "sha256:" + "a" * 64,
                "level": "columns",
                "max_rows": 10,
            }
        )
    )
    assert lines["dry run"].startswith("FAILED: exited with code 1 (2.5 s")
    assert lines["missing"] == "model.skops"
    assert lines["produced"] == "nothing collected"
