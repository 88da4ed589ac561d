"""Nothing derived from the private data reaches a researcher before the owner releases it.

On a dataset that holds outputs for review, a job's metrics, output names and sizes, exit code
and reason are the owner's alone until `c2d release`: not in `c2d status`, `c2d jobs`, the API,
the job's receipt or the ledger every signed-in user reads. Found by attacking a running
installation: a job wrote a person's name and number as a metric key, and its researcher read
it in `c2d status` before anyone released anything.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from tests.kit.installation import Installation

pytestmark = [
    pytest.mark.docker,
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.attack,
    pytest.mark.timeout(600),
]

ROW = "Jane Roe,123-45-6789"
SIZE = 7_350_193
"""The size of the held output: a number of seven digits, which no timestamp's six-digit
fraction can hold by chance (the shared stack's ledger holds thousands of them)."""
SECRETS = ("jane", "roe", "123-45", "45-6789", "123456789", str(SIZE))


def _job(root: Path, script: str, outputs: list[str]) -> Path:
    folder = root / f"job-{uuid.uuid4().hex[:6]}"
    folder.mkdir(parents=True)
    (folder / "job.yaml").write_text(
        json.dumps(
            {
                "name": "leaky",
                "command": ["python3", "run.py"],
                "outputs": outputs,
                "resources": {"memory": "256MiB", "timeout": "2m"},
            }
        )
    )
    (folder / "run.py").write_text(script)
    return folder


# Digests, keys, signatures and tokens: long runs of hex or base64 that a number can appear in
# by chance (the shared ledger holds hundreds); they are c2d's, not the job's.
_OPAQUE = re.compile(r"[A-Za-z0-9+/=_-]{32,}")


def _leaks(text: str) -> list[str]:
    lowered = _OPAQUE.sub(" ", text).lower()
    return [s for s in SECRETS if s in lowered]


def _everything_the_researcher_reads(stack: Installation, token: str, job_id: str) -> str:
    """`c2d status` and `c2d jobs` (people's and JSON forms), the API, receipt and ledger."""
    seen = []
    for args in (("status", job_id), ("status", job_id, "--json"), ("jobs",), ("jobs", "--json")):
        done = stack.c2d(*args, token=token)
        seen += [done.stdout, done.stderr]
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=stack.url, headers=headers, timeout=30) as api:
        seen.append(api.get(f"/v1/jobs/{job_id}").text)
        receipt = api.get(f"/v1/jobs/{job_id}/receipt").json()
        seen += [base64.b64decode(e["entry"]).decode() for e in receipt["entries"]]
        log = api.get("/v1/ledger/entries").json()
        seen += [base64.b64decode(e["entry"]).decode() for e in log["entries"]]
    shown = stack.c2d("ledger", "show", token=token)
    seen += [shown.stdout, shown.stderr]
    return "\n".join(seen)


def _wait(stack: Installation, token: str, job_id: str, expect: int = 0) -> dict[str, Any]:
    done: dict[str, Any] = stack.json(
        "status", job_id, "--wait", token=token, expect=expect, timeout=300
    )
    return done


@pytest.fixture
def held(c2d_stack: Installation, patients_dir: Path) -> tuple[str, str, str]:
    """An owner's token, a researcher's token and a dataset that holds outputs for review."""
    _, owner = c2d_stack.add_user("owner", "owen")
    _, researcher = c2d_stack.add_user("researcher", "rhea")
    dataset = f"held-{uuid.uuid4().hex[:6]}"
    c2d_stack.json("dataset", "add", dataset, str(patients_dir), "--review-outputs", token=owner)
    return owner, researcher, dataset


def test_metrics_and_output_names_stay_with_the_owner_until_release(
    c2d_stack: Installation, held: tuple[str, str, str], tmp_path: Path
) -> None:
    stack = c2d_stack
    owner, researcher, dataset = held
    folder = _job(
        tmp_path,
        "import json\n"
        f"open('/outputs/Jane_Roe_123-45-6789.txt', 'w').write('x' * {SIZE})\n"
        "json.dump({'jane_roe_123456789': 1.0}, open('/outputs/metrics.json', 'w'))\n"
        "print('Jane Roe')\n",
        ["*.txt"],
    )
    job = stack.json("submit", str(folder), "--dataset", dataset, token=researcher)
    stack.json("approve", job["id"], token=owner)
    done = _wait(stack, researcher, job["id"])
    assert done["state"] == "succeeded"
    assert done["withheld"] is True
    assert done["outcome"] is None
    assert _leaks(_everything_the_researcher_reads(stack, researcher, job["id"])) == []

    # The owner reads it all, to decide.
    owners = stack.json("status", job["id"], token=owner)
    assert owners["outcome"]["metrics"] == {"jane_roe_123456789": 1.0}
    assert [o["name"] for o in owners["outcome"]["outputs"]] == [
        "Jane_Roe_123-45-6789.txt",
        "metrics.json",
    ]
    # After release the researcher does too (the metric name failed an output check; the
    # owner releases despite it, as tests/e2e/test_cli_output_checks.py shows in full).
    stack.json("release", job["id"], "--despite-checks", token=owner)
    released = stack.json("status", job["id"], token=researcher)
    assert released["withheld"] is False
    assert released["outcome"]["metrics"] == {"jane_roe_123456789": 1.0}
    fetched = stack.json("fetch", job["id"], "-o", str(tmp_path / "out"), token=researcher)
    assert {f["name"] for f in fetched["files"]} == {"Jane_Roe_123-45-6789.txt", "metrics.json"}


def test_a_row_as_a_metric_key_fails_the_job_and_its_reason_stays_with_the_owner(
    c2d_stack: Installation, held: tuple[str, str, str], tmp_path: Path
) -> None:
    stack = c2d_stack
    owner, researcher, dataset = held
    folder = _job(
        tmp_path,
        f"import json\njson.dump({{{ROW!r}: 1.0}}, open('/outputs/metrics.json', 'w'))\n",
        [],
    )
    job = stack.json("submit", str(folder), "--dataset", dataset, token=researcher)
    stack.json("approve", job["id"], token=owner)
    failed = _wait(stack, researcher, job["id"], expect=1)
    assert failed["state"] == "failed"
    assert "stays with the data owner" in failed["reason"]
    assert _leaks(_everything_the_researcher_reads(stack, researcher, job["id"])) == []
    reason = stack.json("status", job["id"], token=owner)["reason"]
    assert "not a short name" in reason
    assert _leaks(reason) == []  # the reason itself does not repeat the key


def test_a_job_chosen_path_in_a_reason_is_bounded_and_escaped(
    c2d_stack: Installation, held: tuple[str, str, str], tmp_path: Path
) -> None:
    stack = c2d_stack
    owner, researcher, dataset = held
    # 30 folders of 255 bytes (7,680 of path), then a symlink the collector refuses and names.
    folder = _job(
        tmp_path,
        "import os\n"
        "os.chdir('/outputs')\n"
        "for n in range(30):\n"
        "    name = ('\\x1b[2K' + str(n)).ljust(255, 'J')\n"
        "    os.mkdir(name)\n"
        "    os.chdir(name)\n"
        "os.symlink('/data', 'model.bin')\n",
        ["**/model.bin"],
    )
    job = stack.json("submit", str(folder), "--dataset", dataset, token=researcher)
    stack.json("approve", job["id"], token=owner)
    failed = _wait(stack, researcher, job["id"], expect=1)
    assert "JJJ" not in _everything_the_researcher_reads(stack, researcher, job["id"])
    reason = stack.json("status", job["id"], token=owner)["reason"]
    assert "is a symlink" in reason
    assert len(reason) < 200
    assert "\x1b" not in reason
    assert failed["withheld"] is True


def test_the_owner_sets_how_many_metrics_a_job_may_report(
    c2d_stack: Installation, patients_dir: Path, tmp_path: Path
) -> None:
    stack = c2d_stack
    _, owner = stack.add_user("owner", "owen")
    _, researcher = stack.add_user("researcher", "rhea")
    dataset = f"few-{uuid.uuid4().hex[:6]}"
    # Released on success, so its researcher reads why a run failed.
    added = stack.json(
        "dataset", "add", dataset, str(patients_dir), "--max-metrics", "2",
        "--release-on-success", token=owner,
    )  # fmt: skip
    assert added["policy"]["max_metrics"] == 2
    folder = _job(
        tmp_path,
        "import json\njson.dump({'a': 1, 'b': 2, 'c': 3}, open('/outputs/metrics.json', 'w'))\n",
        [],
    )
    job = stack.json("submit", str(folder), "--dataset", dataset, token=researcher)
    stack.json("approve", job["id"], token=owner)
    failed = _wait(stack, researcher, job["id"], expect=1)
    assert "has 3 keys; at most 2 are allowed" in failed["reason"]
    refused = stack.c2d(
        "dataset", "add", "x", str(patients_dir), "--max-metrics", "1001", token=owner
    )
    assert refused.returncode == 2
