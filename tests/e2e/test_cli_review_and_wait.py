"""An owner reads every line of new code before approving; a researcher waits on a job by id."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Stack

pytestmark = [pytest.mark.docker, pytest.mark.redis, pytest.mark.slow]


def test_first_review_shows_all_code_and_status_wait_follows_to_the_end(
    c2d_stack: Stack, patients_dir: Path, example_job: Callable[[str], Path]
) -> None:
    stack = c2d_stack
    _, owner = stack.add_user("owner", "owen")
    _, researcher = stack.add_user("researcher", "ria")
    dataset = f"patients-{uuid.uuid4().hex[:6]}"
    stack.json("dataset", "add", dataset, str(patients_dir), token=owner)
    job_dir = example_job("bp-regression")
    job = stack.json("submit", str(job_dir), "--dataset", dataset, token=researcher)

    review = stack.json("review", job["id"], token=owner)
    assert review["previous"] is None
    # Nothing approved before: the diff is against nothing, so every line of the code shows.
    for line in (job_dir / "fit.py").read_text().splitlines():
        assert f"+{line}" in review["diff"]
    people = stack.c2d("review", job["id"], token=owner)
    assert people.returncode == 0, people.stderr
    assert "model.fit(X, y)" in people.stderr

    stack.json("approve", job["id"], token=owner)
    done = stack.json("status", job["id"], "--wait", token=researcher, timeout=300)
    assert done["state"] in {"succeeded", "released"}, stack.logs()

    # A job that fails makes `status --wait` exit 1.
    broken = example_job("bp-regression")
    (broken / "fit.py").write_text("raise SystemExit(3)\n")
    bad = stack.json("submit", str(broken), "--dataset", dataset, token=researcher)
    stack.json("approve", bad["id"], token=owner)
    failed = stack.json("status", bad["id"], "--wait", token=researcher, expect=1, timeout=300)
    assert failed["state"] == "failed"
    assert "exited with code 3" in failed["reason"]
