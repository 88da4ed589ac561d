"""Every documented exit code, each produced by a real situation against a real stack.

0 ok; 1 the job failed or a verification failed; 2 usage or validation; 3 not found;
4 not allowed or not authenticated; 5 a service is unreachable. With `--json`, even a failing
command prints exactly one JSON document on stdout.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import rfc8785

if TYPE_CHECKING:
    from tests.kit.installation import Installation

pytestmark = [pytest.mark.docker, pytest.mark.redis, pytest.mark.slow]

MakeJob = Callable[[str], Path]


@pytest.fixture
def people(c2d_stack: Installation, patients_dir: Path) -> dict[str, Any]:
    """An owner with a dataset (outputs released on success), and two researchers."""
    _, owner_token = c2d_stack.add_user("owner", "olga")
    _, rita_token = c2d_stack.add_user("researcher", "rita")
    _, sam_token = c2d_stack.add_user("researcher", "sam")
    dataset = f"patients-{uuid.uuid4().hex[:6]}"
    c2d_stack.json(
        "dataset", "add", dataset, str(patients_dir), "--release-on-success", token=owner_token
    )
    return {
        "owner": owner_token,
        "rita": rita_token,
        "sam": sam_token,
        "dataset": dataset,
    }


def error_of(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The one JSON error document a failing `--json` command printed."""
    document = json.loads(done.stdout)
    assert set(document) == {"error"}, document
    return dict(document["error"])


def run_to_release(stack: Installation, people: dict[str, Any], job_dir: Path, *params: str) -> str:
    """Submit, approve and wait until released; return the job id."""
    job = stack.json("submit", str(job_dir), "--dataset", people["dataset"], *params,
                     token=people["rita"])  # fmt: skip
    stack.json("approve", job["id"], token=people["owner"])
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        state = stack.json("status", job["id"], token=people["rita"])["state"]
        if state in {"released", "failed", "cancelled"}:
            break
        time.sleep(0.5)
    assert state == "released", stack.logs()
    return str(job["id"])


def test_exit_1_when_the_job_fails_under_wait(
    c2d_stack: Installation, people: dict[str, Any], tmp_path: Path
) -> None:
    job_dir = tmp_path / "failing"
    job_dir.mkdir()
    (job_dir / "job.yaml").write_text(
        'name: failing\ncommand: [python3, -c, "import sys; sys.exit(3)"]\n'
    )
    waiting = c2d_stack.popen("submit", str(job_dir), "--dataset", people["dataset"], "--wait",
                              "--json", token=people["rita"])  # fmt: skip
    try:
        pending: list[dict[str, Any]] = []
        deadline = time.monotonic() + 60
        while not pending and time.monotonic() < deadline:
            pending = [
                j
                for j in c2d_stack.json("jobs", "--state", "pending", token=people["owner"])
                if j["name"] == "failing"
            ]
            time.sleep(0.3)
        assert pending, "the submitted job never showed up as pending"
        c2d_stack.json("approve", pending[0]["id"], token=people["owner"])
        out, err = waiting.communicate(timeout=300)
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.communicate()
    assert waiting.returncode == 1, err
    document = json.loads(out)
    assert document["state"] == "failed"
    assert "3" in (document["reason"] or "")
    assert "failed" in err
    fetch = c2d_stack.c2d("fetch", document["id"], "-o", str(tmp_path / "o"), token=people["rita"])
    assert fetch.returncode == 2, fetch.stderr
    assert "no outputs" in fetch.stderr


def test_exit_1_when_a_stored_artifact_was_tampered_with(
    c2d_stack: Installation, people: dict[str, Any], example_job: MakeJob, tmp_path: Path
) -> None:
    # A parameter no other test uses, so this model's bytes (its address) are this test's own.
    job_id = run_to_release(c2d_stack, people, example_job("diabetes-classifier"),
                            "--param", "n_estimators=7")  # fmt: skip
    job = c2d_stack.json("status", job_id, token=people["rita"])
    model = next(o for o in job["outcome"]["outputs"] if o["name"] == "model.skops")
    hex_digest = model["sha256"].removeprefix("sha256:")
    stored = [p for p in (c2d_stack.home / "artifacts").rglob("*") if hex_digest[2:] in p.name]
    assert len(stored) == 1, stored
    original = stored[0].read_bytes()
    stored[0].chmod(0o644)
    stored[0].write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    try:
        out = tmp_path / "tampered"
        done = c2d_stack.c2d("fetch", job_id, "-o", str(out), "--json", token=people["rita"])
        assert done.returncode == 1, done.stderr
        assert error_of(done)["kind"] == "failed"
        assert "model.skops" in done.stderr
        assert not (out / "model.skops").exists()
        assert not (out / "receipt.json").exists()
        assert not [p for p in out.rglob("*") if p.name == "model.skops"]
    finally:
        stored[0].write_bytes(original)


def test_exit_1_for_a_tampered_receipt_and_a_wrong_pinned_key(
    c2d_stack: Installation, people: dict[str, Any], example_job: MakeJob, tmp_path: Path
) -> None:
    job_id = run_to_release(c2d_stack, people, example_job("bp-regression"))
    out = tmp_path / "good"
    c2d_stack.json("fetch", job_id, "-o", str(out), token=people["rita"])
    key = tmp_path / "ledger.pub"
    key.write_text(c2d_stack.json("login", c2d_stack.url, people["rita"],
                                  config=tmp_path / "cfg.json")["public_key"])  # fmt: skip
    receipt = json.loads((out / "receipt.json").read_text())
    finished = next(
        i for i, e in enumerate(receipt["entries"])
        if json.loads(base64.b64decode(e["entry"]))["type"] == "job.finished"
    )  # fmt: skip
    entry = json.loads(base64.b64decode(receipt["entries"][finished]["entry"]))
    entry["body"]["outputs"] += 1  # claim one more output than the run left
    receipt["entries"][finished]["entry"] = base64.b64encode(rfc8785.dumps(entry)).decode()
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(receipt))
    done = c2d_stack.c2d("receipt", "verify", str(forged), "--key", str(key), "--json")
    assert done.returncode == 1, done.stderr
    assert error_of(done)["kind"] == "failed"
    ok = c2d_stack.c2d("receipt", "verify", str(out / "receipt.json"), "--key", str(key))
    assert ok.returncode == 0, ok.stderr

    other_key = tmp_path / "other.pub"
    other_key.write_text(base64.b64encode(b"\x05" * 32).decode())
    again = tmp_path / "again"
    done = c2d_stack.c2d("fetch", job_id, "-o", str(again), "--key", str(other_key),
                         token=people["rita"])  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "key" in done.stderr
    assert not again.exists() or not any(again.iterdir())
    done = c2d_stack.c2d("receipt", "verify", str(out / "receipt.json"), "--key", str(other_key))
    assert done.returncode == 1


def test_exit_1_for_a_tampered_copy_of_the_ledger(c2d_stack: Installation, tmp_path: Path) -> None:
    copy = tmp_path / "home"
    copy.mkdir()
    with (
        sqlite3.connect(c2d_stack.home / "c2d.db") as source,
        sqlite3.connect(copy / "c2d.db") as target,
    ):
        source.backup(target)
    assert c2d_stack.json("ledger", "verify", "--home", str(copy))["ok"] is True
    with sqlite3.connect(copy / "c2d.db") as db:
        db.execute("UPDATE ledger_entries SET canonical = CAST(? AS BLOB) WHERE seq = 0", ("{}",))
    report = c2d_stack.json("ledger", "verify", "--home", str(copy), expect=1)
    assert report["ok"] is False
    assert report["first_bad"] == 0


def test_exit_2_for_spec_errors_conflicts_and_usage(
    c2d_stack: Installation, people: dict[str, Any], example_job: MakeJob
) -> None:
    job_dir = example_job("diabetes-classifier")
    (job_dir / "job.yaml").write_text((job_dir / "job.yaml").read_text() + "colour: blue\n")
    done = c2d_stack.c2d("submit", str(job_dir), "--json", token=people["rita"])
    assert done.returncode == 2, done.stderr
    error = error_of(done)
    assert error["field"] == "colour"
    assert "job.yaml" in error["file"]
    assert "fields" in error["allowed"]

    good = example_job("diabetes-classifier")
    job = c2d_stack.json("submit", str(good), "--dataset", people["dataset"], token=people["rita"])
    c2d_stack.json("reject", job["id"], "--reason", "no", token=people["owner"])
    done = c2d_stack.c2d("approve", job["id"], "--json", token=people["owner"])
    assert done.returncode == 2, done.stderr
    assert error_of(done)["kind"] == "conflict"

    assert c2d_stack.c2d("approve", token=people["owner"]).returncode == 2
    assert c2d_stack.c2d("frobnicate").returncode == 2
    again = c2d_stack.c2d("init", env=c2d_stack.env)
    assert again.returncode == 2, again.stderr  # the state folder exists: init refuses


def test_exit_3_for_unknown_and_invisible_jobs(
    c2d_stack: Installation, people: dict[str, Any], example_job: MakeJob, tmp_path: Path
) -> None:
    done = c2d_stack.c2d("status", "no-such-job", "--json", token=people["rita"])
    assert done.returncode == 3, done.stderr
    assert error_of(done)["kind"] == "not_found"
    job = c2d_stack.json("submit", str(example_job("bp-regression")), "--dataset",
                         people["dataset"], token=people["rita"])  # fmt: skip
    # Another researcher cannot even learn that the job exists.
    assert c2d_stack.c2d("status", job["id"], token=people["sam"]).returncode == 3
    assert c2d_stack.c2d("cancel", job["id"], token=people["sam"]).returncode == 3
    key = tmp_path / "k.pub"
    key.write_text(base64.b64encode(b"\x01" * 32).decode())
    missing = c2d_stack.c2d("receipt", "verify", str(tmp_path / "none.json"), "--key", str(key))
    assert missing.returncode == 3


def test_exit_4_for_bad_tokens_and_roles(
    c2d_stack: Installation, people: dict[str, Any], example_job: MakeJob
) -> None:
    done = c2d_stack.c2d("jobs", "--json", token="not-a-token")
    assert done.returncode == 4, done.stderr
    assert error_of(done)["kind"] == "unauthenticated"
    assert c2d_stack.c2d("jobs").returncode == 4  # no token at all
    job = c2d_stack.json("submit", str(example_job("bp-regression")), "--dataset",
                         people["dataset"], token=people["rita"])  # fmt: skip
    own = c2d_stack.c2d("approve", job["id"], "--json", token=people["rita"])
    assert own.returncode == 4, own.stderr
    assert error_of(own)["kind"] == "not_allowed"
    assert (
        c2d_stack.c2d("user", "add", "eve", "--role", "admin", token=people["rita"]).returncode == 4
    )
    login = c2d_stack.c2d(
        "login", c2d_stack.url, "wrong-token", env={"C2D_CONFIG": "/nonexistent/x"}
    )
    assert login.returncode == 4


def test_exit_5_when_the_api_is_unreachable(c2d_stack: Installation) -> None:
    url = c2d_stack.unused_url()
    done = c2d_stack.c2d("--url", url, "status", "x", "--json", token="t")
    assert done.returncode == 5, done.stderr
    assert error_of(done)["kind"] == "unavailable"
    assert url in done.stderr
    assert "c2d server" in done.stderr
