"""Developing against data you cannot see, as people do it with the real `c2d` and a real stack.

A data owner registers a patients table with a planted canary twice: with the default `columns`
schema and with `stats` plus a public `sex` column. A researcher reads the schema, makes mock
data, runs the example job on it on their own machine, and submits it; the data host dry-runs
it on mock data before review, and the owner sees that first. One dataset pair and one pair of
users serve the whole module.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest

if TYPE_CHECKING:
    from tests.kit.installation import Installation

pytestmark = [pytest.mark.docker, pytest.mark.redis, pytest.mark.slow]

CANARY = "ZQX-canary-3N8VQ"
DRYRUN_WAIT_S = 240.0


@dataclass(frozen=True)
class People:
    """The module's owner and researcher, and their two registrations of the same data."""

    owner: str
    researcher: str
    columns: str  # schema `columns` (the default)
    stats: str  # schema `stats`, `sex` public
    hidden: str  # schema `hidden`
    data: Path


@pytest.fixture(scope="module")
def people(
    c2d_stack: Installation, patients_source: Path, tmp_path_factory: pytest.TempPathFactory
):
    stack = c2d_stack
    folder = tmp_path_factory.mktemp("canary-patients")
    table = pd.read_csv(patients_source / "patients.csv")
    table["name"] = [f"Person{n:05d}" for n in range(len(table))]
    table.loc[len(table) // 2, "name"] = CANARY
    table.to_csv(folder / "patients.csv", index=False)
    folder.chmod(0o755)
    (folder / "patients.csv").chmod(0o644)
    _, owner = stack.add_user("owner", "oona")
    _, researcher = stack.add_user("researcher", "rudi")
    suffix = uuid.uuid4().hex[:6]
    columns, stats = f"pts-cols-{suffix}", f"pts-stats-{suffix}"
    hidden = f"pts-hidden-{suffix}"
    stack.json("dataset", "add", columns, str(folder), token=owner)
    stack.json("dataset", "add", hidden, str(folder), "--schema", "hidden", token=owner)
    # Released on success: a test below reads the run's metrics as its researcher.
    stack.json(
        "dataset", "add", stats, str(folder), "--schema", "stats", "--public",
        "patients.csv:sex", "--release-on-success", token=owner,
    )  # fmt: skip
    return People(owner, researcher, columns, stats, hidden, folder)


def _columns(doc: dict[str, Any]) -> list[dict[str, Any]]:
    (entry,) = doc["profile"]["files"]
    return list(entry["columns"])


def test_the_owner_sees_everything_and_the_researcher_names_and_types_only(
    c2d_stack: Installation, people: People
) -> None:
    stack = c2d_stack
    owner = stack.json("dataset", "show", people.columns, token=people.owner)
    mine = stack.c2d("dataset", "show", people.columns, "--json", token=people.researcher)
    assert mine.returncode == 0, mine.stderr
    doc = json.loads(mine.stdout)
    real = pd.read_csv(people.data / "patients.csv")
    assert [c["name"] for c in _columns(doc)] == list(real.columns)
    assert (owner["full"], doc["full"], doc["schema"]) == (True, False, "columns")
    assert any("min" in c for c in _columns(owner))
    for column in _columns(doc):
        assert not {"values", "min", "max", "mean", "std", "counts"} & set(column)
    assert CANARY not in mine.stdout + mine.stderr
    assert "glucose" in mine.stderr  # the table for people, on stderr


def test_mock_data_has_the_columns_and_rows_and_no_real_value(
    c2d_stack: Installation, people: People, tmp_path: Path
) -> None:
    stack = c2d_stack
    made = stack.c2d("dataset", "mock", people.columns, "-o", str(tmp_path / "m"),
                     token=people.researcher)  # fmt: skip
    assert made.returncode == 0, made.stderr
    digest = made.stdout.strip()
    assert digest.startswith("sha256:")
    assert digest in made.stderr
    real = pd.read_csv(people.data / "patients.csv")
    text = (tmp_path / "m" / "patients.csv").read_text()
    mock = pd.read_csv(tmp_path / "m" / "patients.csv")
    assert list(mock.columns) == list(real.columns)
    assert len(mock) == len(real)
    assert CANARY not in text
    for name in ("patient_id", "name", "sex"):
        assert not set(real[name].astype(str)) & set(mock[name].astype(str)), name
    again = stack.json("dataset", "mock", people.columns, "-o", str(tmp_path / "again"),
                       token=people.researcher)  # fmt: skip
    assert again["digest"] == digest  # the same schema and seed give the same bytes


def test_a_hidden_schema_shows_file_names_only_and_makes_no_mock(
    c2d_stack: Installation, people: People, tmp_path: Path
) -> None:
    stack = c2d_stack
    doc = stack.json("dataset", "show", people.hidden, token=people.researcher)
    assert doc["profile"]["files"] == [
        {
            "path": "patients.csv",
            "format": "csv",
            "bytes": (people.data / "patients.csv").stat().st_size,
        }
    ]
    refused = stack.c2d("dataset", "mock", people.hidden, "-o", str(tmp_path / "m"),
                        token=people.researcher)  # fmt: skip
    assert refused.returncode == 4, refused.stderr
    assert "hidden" in refused.stderr
    assert not (tmp_path / "m").exists()


def test_run_mock_runs_the_example_here_and_says_no_private_data_was_used(
    c2d_stack: Installation, people: People, example_job: Callable[[str], Path], tmp_path: Path
) -> None:
    stack = c2d_stack
    job = example_job("diabetes-classifier")
    done = stack.c2d("run", str(job), "--mock", people.stats, "--rows", "400", "--json",
                     "-o", str(tmp_path / "out"), token=people.researcher)  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["ok"] is True, doc["log"]
    assert (doc["private_data_used"], doc["mock_source"]) == (False, "dataset")
    assert f"no private data was used: the job ran on this machine against mock data " \
        f"{doc['mock_digest']}" in done.stderr  # fmt: skip
    assert {o["name"] for o in doc["outputs"]} == {"model.skops", "metrics.json"}
    assert (tmp_path / "out" / "model.skops").is_file()
    assert doc["metrics"]["train_rows"] == 300


def _review_with_dryrun(stack: Installation, job_id: str, token: str) -> dict[str, Any]:
    deadline = time.monotonic() + DRYRUN_WAIT_S
    while time.monotonic() < deadline:
        review = stack.json("review", job_id, token=token)
        if review["dryrun"] is not None:
            return review
        time.sleep(1.0)
    raise AssertionError(f"job {job_id} got no dry run\n{stack.logs()}")


def test_a_submitted_job_is_dry_run_on_mock_data_and_review_shows_it_first(
    c2d_stack: Installation, people: People, example_job: Callable[[str], Path], tmp_path: Path
) -> None:
    stack = c2d_stack
    job = stack.json("submit", str(example_job("diabetes-classifier")), "--dataset",
                     people.stats, token=people.researcher)  # fmt: skip
    review = _review_with_dryrun(stack, job["id"], people.owner)
    dryrun = review["dryrun"]
    assert (dryrun["ok"], dryrun["reason"], review["job"]["state"]) == (
        True, "exited with code 0", "pending",
    )  # fmt: skip
    assert set(dryrun["produced"]) == {"model.skops", "metrics.json"}
    # The data host's mock is the one the researcher makes from the schema (rows below the cap).
    mine = stack.json("dataset", "mock", people.stats, "-o", str(tmp_path / "mine"),
                      token=people.researcher)  # fmt: skip
    assert dryrun["mock_digest"] == mine["digest"]
    entries = stack.json("ledger", "show", "--job", job["id"], token=people.researcher)
    (entry,) = [e for e in entries if e["type"] == "job.dryrun"]
    assert (entry["body"]["mock_digest"], entry["body"]["ok"]) == (mine["digest"], True)

    people_view = stack.c2d("review", job["id"], token=people.owner)
    assert people_view.stderr.startswith("dry run       ok: exited with code 0"), people_view.stderr

    # The code was known to run: approved once, it runs on the real data.
    stack.json("approve", job["id"], token=people.owner)
    done = stack.json("status", job["id"], "--wait", token=people.researcher, timeout=300)
    assert done["state"] in {"succeeded", "released"}, stack.logs()
    assert done["outcome"]["metrics"]["train_rows"] == 450  # the real 600 rows, not the mock


def test_a_job_that_crashes_on_mock_data_shows_it_in_review_and_stays_pending(
    c2d_stack: Installation, people: People, example_job: Callable[[str], Path]
) -> None:
    stack = c2d_stack
    job_dir = example_job("diabetes-classifier")
    train = job_dir / "train.py"
    train.write_text(train.read_text().replace('"systolic_bp"]', '"hba1c"]'))
    job = stack.json("submit", str(job_dir), "--dataset", people.columns,
                     token=people.researcher)  # fmt: skip
    review = _review_with_dryrun(stack, job["id"], people.owner)
    dryrun = review["dryrun"]
    assert (dryrun["ok"], dryrun["reason"]) == (False, "exited with code 1")
    assert "KeyError" in dryrun["log_tail"]
    assert "hba1c" in dryrun["log_tail"]
    assert dryrun["missing"] == ["model.skops"]
    assert review["job"]["state"] == "pending"
    people_view = stack.c2d("review", job["id"], token=people.owner)
    assert people_view.stderr.startswith("dry run       FAILED: exited with code 1")
    assert stack.json("status", job["id"], token=people.researcher)["state"] == "pending"
    # The researcher sees it too (the schema is not hidden), and can fix the code before review.
    theirs = stack.c2d("status", job["id"], token=people.researcher)
    assert "dry run       FAILED: exited with code 1" in theirs.stderr
    assert "KeyError" in theirs.stderr
