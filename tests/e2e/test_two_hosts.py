"""Two data hosts as separate processes with separate state folders, one control plane.

The operator runs `c2d init` (the control plane and its local host) and `c2d server`; a second
host, `b`, is added by the admin and enrolled from its own folder with the token piped in, with
dataset roots of its own; each host's agent is a `c2d host start` process. Owners register a
dataset on each host (on that host), a researcher submits to both with the CLI: each job runs
on its dataset's host, and the released model is fetched, verified and loaded. A canary in
host b's private data is nowhere in the control plane's state folder until the owner releases
the output that carries it.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import skops.io

from tests.e2e.conftest import bare_stack, fresh_redis
from tests.kit.installation import Installation

pytestmark = [pytest.mark.docker, pytest.mark.redis, pytest.mark.slow, pytest.mark.timeout(900)]

REDIS_DB = 5
CANARY = "CANARY-7d1f0b9e-only-on-host-b"


@dataclass
class TwoHosts:
    stack: Installation
    b_home: Path
    b_roots: Path
    owner: str
    researcher: str

    def add_on_b(self, name: str, folder: Path, *flags: str) -> dict[str, Any]:
        """`c2d dataset add` on host b, with b's own saved roots (not the operator's)."""
        done = self.stack.c2d(
            "dataset", "add", name, str(folder), *flags, "--home", str(self.b_home), "--json",
            token=self.owner, env={"C2D_DATASET_ROOTS": ""},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        result: dict[str, Any] = json.loads(done.stdout)
        return result


@pytest.fixture(scope="module")
def two(tmp_path_factory, docker_client, redis_url, job_image) -> Iterator[TwoHosts]:
    root = tmp_path_factory.mktemp("two-hosts")
    b_roots = tmp_path_factory.mktemp("host-b-private")
    stack = bare_stack(root / "control", fresh_redis(redis_url, REDIS_DB))
    done = stack.init()
    assert done.returncode == 0, done.stderr
    try:
        stack.start_server()
        stack.start_worker()  # host local
        b_home = root / "host-b"
        enrolled = stack.add_host("b", b_home, C2D_DATASET_ROOTS=str(b_roots))
        assert enrolled["name"] == "b"
        stack.start_worker(home=b_home, C2D_DATASET_ROOTS=str(b_roots))
        _, owner = stack.add_user("owner", "olga")
        _, researcher = stack.add_user("researcher", "rita")
        yield TwoHosts(stack, b_home, b_roots, owner, researcher)
    finally:
        stack.stop()


def actor_of(stack: Installation, token: str, job_id: str, entry_type: str) -> str:
    """The ledger actor of the job's entry ``entry_type`` (as its receipt shows it)."""
    with stack.client(token) as client:
        receipt = json.loads(client.receipt_bytes(job_id))
    for entry in receipt["entries"]:
        body = json.loads(base64.b64decode(entry["entry"]))
        if body["type"] == entry_type:
            return str(body["actor"])
    raise AssertionError(f"no {entry_type} in the receipt of {job_id}")


def copy_job(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def test_each_job_runs_on_its_datasets_host_and_its_model_is_fetched_verified(
    two: TwoHosts, patients_source: Path, tmp_path: Path
) -> None:
    stack = two.stack
    near = f"near-{uuid.uuid4().hex[:6]}"
    far = f"far-{uuid.uuid4().hex[:6]}"
    local_copy = stack.root.parent / f"near-{uuid.uuid4().hex[:6]}"  # the local host's roots
    shutil.copytree(patients_source, local_copy)
    b_copy = two.b_roots / f"patients-{uuid.uuid4().hex[:6]}"
    shutil.copytree(patients_source, b_copy)
    # Released on success: this test is about where jobs run, not the owner's review.
    assert stack.dataset_add(two.owner, near, local_copy, "--release-on-success").returncode == 0
    assert two.add_on_b(far, b_copy, "--release-on-success")["policy"]["host"] == "b"

    hosts = {h["name"]: h for h in stack.json("hosts", token=two.owner)}
    assert set(hosts) >= {"local", "b"}
    assert hosts["b"]["fingerprint"] != hosts["local"]["fingerprint"]

    example = Path(__file__).resolve().parents[2] / "examples" / "jobs" / "diabetes-classifier"
    jobs = {}
    for dataset in (near, far):
        folder = copy_job(example, tmp_path / f"job-{dataset}")
        submitted = stack.json(
            "submit", str(folder), "--dataset", dataset, "--param", "n_estimators=20",
            token=two.researcher,
        )  # fmt: skip
        stack.json("approve", submitted["id"], token=two.owner)
        jobs[dataset] = submitted["id"]
    for job_id in jobs.values():
        done = stack.json("status", job_id, "--wait", token=two.researcher, timeout=300)
        assert done["state"] == "released", (done, stack.logs())

    assert actor_of(stack, two.researcher, jobs[near], "job.started").startswith("worker:local@")
    assert actor_of(stack, two.researcher, jobs[far], "job.started").startswith("worker:b@")

    out = tmp_path / "fetched"
    fetched = stack.json("fetch", jobs[far], "-o", str(out), token=two.researcher)
    assert fetched["verified"] is True
    model_path = out / "model.skops"
    model = skops.io.load(model_path, trusted=skops.io.get_untrusted_types(file=model_path))
    data = pd.read_csv(patients_source / "patients.csv")
    features = ["age", "bmi", "smoker", "glucose", "systolic_bp"]
    assert float((model.predict(data[features]) == data["diabetes"]).mean()) > 0.6


def files_holding(folder: Path, needle: bytes) -> list[Path]:
    """Every regular file under ``folder`` whose bytes hold ``needle`` (links not followed;
    files a host removes while this reads are skipped)."""
    found = []
    for parent, _, names in os.walk(folder):  # errors (a folder removed meanwhile) skipped
        for name in names:
            path = Path(parent) / name
            try:
                if not path.is_symlink() and path.is_file() and needle in path.read_bytes():
                    found.append(path)
            except OSError:
                continue
    return found


def test_a_canary_in_a_hosts_data_reaches_the_control_plane_only_on_release(
    two: TwoHosts, tmp_path: Path
) -> None:
    stack = two.stack
    data = two.b_roots / f"canary-{uuid.uuid4().hex[:6]}"
    data.mkdir()
    (data / "secret.csv").write_text(f"id,note\n1,{CANARY}\n")
    dataset = f"canary-{uuid.uuid4().hex[:6]}"
    two.add_on_b(dataset, data, "--review-outputs")
    job_dir = tmp_path / "leak"
    job_dir.mkdir()
    (job_dir / "job.yaml").write_text(
        json.dumps(
            {
                "name": "carry",
                "command": ["python3", "carry.py"],
                "outputs": ["carried.txt"],
                "resources": {"memory": "256MiB", "timeout": "2m"},
            }
        )
    )
    (job_dir / "carry.py").write_text(
        "import glob\n"
        "text = open(glob.glob('/data/*/secret.csv')[0]).read()\n"
        "print(text)\n"
        "open('/outputs/carried.txt', 'w').write(text)\n"
    )
    job = stack.json("submit", str(job_dir), "--dataset", dataset, token=two.researcher)
    stack.json("approve", job["id"], token=two.owner)
    done = stack.json("status", job["id"], "--wait", token=two.researcher, timeout=300)
    assert done["state"] == "succeeded", (done, stack.logs())

    needle = CANARY.encode()
    # The canary is on host b (the test can see it there)...
    assert files_holding(two.b_home, needle)
    # ...and nowhere in the control plane's state folder while the output is held.
    control = stack.home
    assert [p for p in files_holding(control, needle) if "hosts" not in p.parts] == []

    stack.json("release", job["id"], token=two.owner)
    out = tmp_path / "out"
    fetched = stack.json("fetch", job["id"], "-o", str(out), token=two.researcher)
    assert fetched["verified"] is True
    assert CANARY in (out / "carried.txt").read_text()
    assert files_holding(control, needle)  # the released output, kept for its researcher
