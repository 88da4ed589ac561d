"""An owner reads every line of new code before approving; a researcher waits on a job by id."""

from __future__ import annotations

import io
import tarfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from jobs.models import JobSpec
from runner.client import Client
from runner.errors import ApiError

if TYPE_CHECKING:
    from tests.kit.installation import Installation

pytestmark = [pytest.mark.docker, pytest.mark.redis, pytest.mark.slow]


def test_first_review_shows_all_code_and_status_wait_follows_to_the_end(
    c2d_stack: Installation, patients_dir: Path, example_job: Callable[[str], Path]
) -> None:
    stack = c2d_stack
    _, owner = stack.add_user("owner", "owen")
    _, researcher = stack.add_user("researcher", "ria")
    dataset = f"patients-{uuid.uuid4().hex[:6]}"
    # Released on success: the researcher reads the failed run's reason below.
    stack.json("dataset", "add", dataset, str(patients_dir), "--release-on-success", token=owner)
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


ERASE_ABOVE = "\x1b[1A\x1b[2K"  # on a raw terminal: cursor up one line, erase that line
RLO = "\u202e"  # right-to-left override: the rest of the line reads backwards


def _job_folder(folder: Path, dataset: str, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True)
    (folder / "job.yaml").write_text(
        f"name: sneaky\nenvironment: python-ml\ncommand: [python3, sneaky.py]\ndataset: {dataset}\n"
    )
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def test_review_shows_terminal_codes_in_code_and_logs_escaped_never_raw(
    c2d_stack: Installation, patients_dir: Path, tmp_path: Path
) -> None:
    """A line of code that would erase the line above it, and a bidi override, reach the
    owner's review (the diff and the dry run's log) as visible escapes."""
    stack = c2d_stack
    _, owner = stack.add_user("owner", "owen")
    _, researcher = stack.add_user("researcher", "ria")
    dataset = f"patients-{uuid.uuid4().hex[:6]}"
    stack.json("dataset", "add", dataset, str(patients_dir), token=owner)
    code = (
        'print("reading the data")\n'
        f"import os  # {ERASE_ABOVE}nothing to see here\n"
        f'access = "user{RLO} \u2066# admin\u2069\u2066"\n'
        f'print("done{ERASE_ABOVE}{RLO}")\n'
    )
    folder = _job_folder(tmp_path / "sneaky", dataset, {"sneaky.py": code})
    job = stack.json("submit", str(folder), token=researcher)

    deadline = time.monotonic() + 240
    review = stack.json("review", job["id"], token=owner)
    while review.get("dryrun") is None and time.monotonic() < deadline:
        time.sleep(1)
        review = stack.json("review", job["id"], token=owner)
    assert review["dryrun"] is not None, stack.logs()
    # --json stays the raw document: nothing is lost for a script.
    assert f"+import os  # {ERASE_ABOVE}nothing" in review["diff"]
    assert ERASE_ABOVE in review["dryrun"]["log_tail"]

    people = stack.c2d("review", job["id"], token=owner)
    assert people.returncode == 0, people.stderr
    shown = people.stdout + people.stderr
    assert "\x1b" not in shown
    assert RLO not in shown
    assert "\u2066" not in shown
    assert "+import os  # \\x1b[1A\\x1b[2Knothing to see here" in shown
    assert 'access = "user\\u202e \\u2066# admin\\u2069\\u2066"' in shown
    assert "done\\x1b[1A\\x1b[2K\\u202e" in shown  # the dry run's log


def test_a_file_name_with_a_terminal_code_is_refused_by_submit_and_by_the_server(
    c2d_stack: Installation, patients_dir: Path, tmp_path: Path
) -> None:
    stack = c2d_stack
    _, owner = stack.add_user("owner", "owen")
    _, researcher = stack.add_user("researcher", "ria")
    dataset = f"patients-{uuid.uuid4().hex[:6]}"
    stack.json("dataset", "add", dataset, str(patients_dir), token=owner)
    bad = f"train{ERASE_ABOVE}.py"
    folder = _job_folder(tmp_path / "named", dataset, {"sneaky.py": "print(1)\n", bad: "x = 1\n"})

    # `c2d submit` refuses while packing: a usage error (exit 2) naming the file, escaped.
    done = stack.c2d("submit", str(folder), token=researcher)
    assert done.returncode == 2, done.stderr
    assert "train\\x1b[1A\\x1b[2K.py" in done.stderr
    assert "\x1b" not in done.stdout + done.stderr

    # The server refuses the same name in a tar made by hand and sent through the client.
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (("sneaky.py", b"print(1)\n"), (bad, b"x = 1\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    spec = JobSpec.from_yaml(folder / "job.yaml").model_dump(mode="json")
    jobs_before = len(stack.json("jobs", token=researcher))
    with Client(stack.url, researcher, 30) as client, pytest.raises(ApiError) as refused:
        client.submit(spec, buffer.getvalue())
    assert (refused.value.kind, refused.value.status) == ("invalid", 422)
    assert "train\\x1b[1A\\x1b[2K.py" in refused.value.message
    assert "\x1b" not in refused.value.message
    assert len(stack.json("jobs", token=researcher)) == jobs_before
