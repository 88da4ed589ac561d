"""Safe defaults: a dataset holds outputs for its owner, and the data host checks them first.

On a live installation (API, worker, Docker), a job writes a metric whose name is an SSN-like
number and a CSV of 1500 lines. Its dataset was registered with no release flag, so the job
ends succeeded and held; its researcher learns nothing of the run; the owner's `c2d review`
and `c2d status` show the two failed checks; `c2d release` without `--despite-checks` is refused
and says what failed; with it the outputs are released and `job.released` carries the
checks' verdicts and the digest of their details. On a dataset that releases on success, the
same job is held instead of released.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from jobs.digests import canonical_digest

if TYPE_CHECKING:
    from tests.kit.installation import Installation

pytestmark = [pytest.mark.docker, pytest.mark.redis, pytest.mark.slow, pytest.mark.timeout(600)]

ROWISH = "ssn_123456789"
SCRIPT = f"""\
import json
with open('/outputs/preds.csv', 'w') as out:
    out.write('id,pred\\n')
    for i in range(1500):
        out.write(f'{{i}},{{i % 2}}\\n')
json.dump({{'{ROWISH}': 0.5, 'accuracy': 0.9}}, open('/outputs/metrics.json', 'w'))
"""


def _job(root: Path) -> Path:
    folder = root / f"job-{uuid.uuid4().hex[:6]}"
    folder.mkdir(parents=True)
    spec = {
        "name": "rowish",
        "command": ["python3", "run.py"],
        "outputs": ["*.csv"],  # the name it writes is not in what its researcher sees
        "resources": {"memory": "256MiB", "timeout": "2m"},
    }
    (folder / "job.yaml").write_text(json.dumps(spec))
    (folder / "run.py").write_text(SCRIPT)
    return folder


def _run(stack: Installation, tmp_path: Path, owner: str, researcher: str, dataset: str) -> str:
    job = stack.json("submit", str(_job(tmp_path)), "--dataset", dataset, token=researcher)
    stack.json("approve", job["id"], token=owner)
    done = stack.json("status", job["id"], "--wait", token=researcher, timeout=300)
    assert done["state"] == "succeeded", (done, stack.logs())
    return str(job["id"])


def _people(stack: Installation, patients_dir: Path, *flags: str) -> tuple[str, str, str]:
    _, owner = stack.add_user("owner", "oona")
    _, researcher = stack.add_user("researcher", "remy")
    dataset = f"checked-{uuid.uuid4().hex[:6]}"
    added = stack.json("dataset", "add", dataset, str(patients_dir), *flags, token=owner)
    assert added["policy"]["review_outputs"] is (flags != ("--release-on-success",))
    return owner, researcher, dataset


def _researcher_reads(stack: Installation, token: str, job_id: str) -> str:
    seen = []
    for args in (("status", job_id), ("status", job_id, "--json"), ("jobs", "--json")):
        done = stack.c2d(*args, token=token)
        seen += [done.stdout, done.stderr]
    return "\n".join(seen)


def _released(stack: Installation, job_id: str) -> dict[str, Any]:
    entries = [e for e in stack.entries(job_id) if e["type"] == "job.released"]
    assert len(entries) == 1, entries
    return dict(entries[0]["body"])


def test_failed_checks_hold_the_outputs_and_release_needs_the_owners_word(
    c2d_stack: Installation, patients_dir: Path, tmp_path: Path
) -> None:
    stack = c2d_stack
    owner, researcher, dataset = _people(stack, patients_dir)  # no flag: held for review
    job_id = _run(stack, tmp_path, owner, researcher, dataset)

    # The researcher: the state, nothing of the run.
    seen = stack.json("status", job_id, token=researcher)
    assert (seen["withheld"], seen["outcome"]) == (True, None)
    said = _researcher_reads(stack, researcher, job_id)
    for secret in (ROWISH, "preds.csv", "metric_names", "max_rows"):
        assert secret not in said
    # The line count as a number of its own: "1501" also turns up inside timestamps and digests.
    assert not re.search(r"(?<![0-9A-Za-z.])1501(?![0-9A-Za-z])", said), said

    # The owner: the two failed checks, in status and in review.
    outcome = stack.json("status", job_id, token=owner)["outcome"]
    failed = {c["check"]: c["detail"] for c in outcome["checks"] if not c["passed"]}
    assert set(failed) == {"metric_names", "max_rows"}
    assert ROWISH in failed["metric_names"]
    assert failed["max_rows"] == "more than 1000 lines: preds.csv (1501 lines)"
    review = stack.c2d("review", job_id, token=owner)
    assert review.returncode == 0, review.stderr
    assert "2 of 4 FAILED" in review.stderr
    assert "preds.csv (1501 lines)" in review.stderr
    assert f"c2d release {job_id} --despite-checks" in review.stderr

    # Release without the owner's word is refused, saying what failed and what to do.
    refused = stack.c2d("release", job_id, token=owner)
    assert refused.returncode == 2, refused.stderr
    assert "metric_names" in refused.stderr
    assert "--despite-checks" in refused.stderr
    assert stack.json("status", job_id, token=owner)["state"] == "succeeded"
    assert not [e for e in stack.entries(job_id) if e["type"] == "job.released"]

    released = stack.json("release", job_id, "--despite-checks", token=owner)
    assert released["state"] == "released"
    body = _released(stack, job_id)
    assert body["by_policy"] is False
    assert body["despite_checks"] is True
    assert {c["check"]: c["passed"] for c in body["checks"]} == {
        "metric_names": False,
        "metric_values": True,
        "min_cell": True,
        "max_rows": False,
    }
    assert body["checks_digest"] == canonical_digest(outcome["checks"])
    assert ROWISH not in json.dumps(body)  # the ledger is every signed-in user's
    fetched = stack.json("fetch", job_id, "-o", str(tmp_path / "out"), token=researcher)
    assert {f["name"] for f in fetched["files"]} == {"preds.csv", "metrics.json"}


def test_on_a_release_on_success_dataset_a_failed_check_holds_the_job(
    c2d_stack: Installation, patients_dir: Path, tmp_path: Path
) -> None:
    stack = c2d_stack
    owner, researcher, dataset = _people(stack, patients_dir, "--release-on-success")
    job_id = _run(stack, tmp_path, owner, researcher, dataset)
    seen = stack.json("status", job_id, token=researcher)
    assert (seen["state"], seen["withheld"], seen["outcome"]) == ("succeeded", True, None)
    assert not [e for e in stack.entries(job_id) if e["type"] == "job.released"]

    # The owner turns the row count and metric-name checks off for later runs; the next job
    # is released by the policy, and the entry says every check passed.
    changed = stack.json(
        "dataset", "checks", dataset, "--max-rows", "0", "--no-metric-name-check", token=owner
    )
    assert (changed["max_rows"], changed["metric_names"]) == (None, False)
    refused = stack.c2d("dataset", "checks", dataset, "--min-cell", "3", token=researcher)
    assert refused.returncode == 4, refused.stderr
    again = _run_to_release(stack, tmp_path, owner, researcher, dataset)
    body = _released(stack, again)
    assert body["by_policy"] is True
    assert all(c["passed"] for c in body["checks"])
    assert {c["check"] for c in body["checks"]} == {"metric_values", "min_cell"}


def _run_to_release(
    stack: Installation, tmp_path: Path, owner: str, researcher: str, dataset: str
) -> str:
    job = stack.json("submit", str(_job(tmp_path)), "--dataset", dataset, token=researcher)
    stack.json("approve", job["id"], token=owner)
    done = stack.json("status", job["id"], "--wait", token=researcher, timeout=300)
    assert done["state"] == "released", (done, stack.logs())
    return str(job["id"])
