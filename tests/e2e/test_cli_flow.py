"""A data owner and a researcher, from registering a dataset to a verified, loadable model.

Everything goes through the real `c2d` console script against a real API server and Celery
worker running real Docker containers; every command is run with `--json` and its one JSON
document is parsed.
"""

from __future__ import annotations

import base64
import json
import stat
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest
import skops.io

from jobs.bundle import pack

if TYPE_CHECKING:
    from tests.kit.installation import Installation

MakeJob = Callable[[str], Path]

pytestmark = [pytest.mark.docker, pytest.mark.redis, pytest.mark.slow]

FINAL = {"succeeded", "failed", "released", "rejected", "cancelled"}


def wait_state(stack: Installation, job_id: str, token: str, states: set[str]) -> dict[str, Any]:
    """Poll `c2d status` until the job is in one of `states` (bounded by the job's timeout)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        job = stack.json("status", job_id, token=token)
        if job["state"] in states or job["state"] in FINAL:
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} stayed {job['state']}\n{stack.logs()}")


def test_owner_and_researcher_from_dataset_to_verified_model(
    c2d_stack: Installation, patients_dir: Path, tmp_path: Path, example_job: MakeJob
) -> None:
    stack = c2d_stack
    owner, owner_token = stack.add_user("owner", "olga")
    researcher, researcher_token = stack.add_user("researcher", "rita")
    dataset = f"patients-{uuid.uuid4().hex[:6]}"

    # The researcher logs in once; later commands read the private config file.
    config = tmp_path / "rita" / "config.json"
    login = stack.json("login", stack.url, researcher_token, config=config)
    assert (login["name"], login["role"]) == (researcher, "researcher")
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    key_file = tmp_path / "ledger.pub"
    key_file.write_text(login["public_key"])
    assert len(base64.b64decode(login["public_key"])) == 32

    # Owner: log in (which makes her signing key), then register the dataset with outputs
    # reviewed by hand; the registration is signed as her publication.
    olga_config = tmp_path / "olga" / "config.json"
    olga_key = stack.json("login", stack.url, owner_token, config=olga_config)["signing_key"]
    added = stack.c2d(
        "dataset", "add", dataset, str(patients_dir), "--review-outputs", "--json",
        token=owner_token, config=olga_config,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "not signed" not in added.stderr
    ds = json.loads(added.stdout)
    assert ds["name"] == dataset
    assert ds["owner"] == owner
    assert ds["files"] == 1
    assert ds["digest"].startswith("sha256:")
    listed = stack.json("dataset", "list", token=researcher_token)
    assert dataset in {d["name"] for d in listed}
    envs = stack.json("env", "list", token=researcher_token)
    assert "python-ml" in {e["name"] for e in envs}

    # Researcher: submit the example classifier with a parameter override.
    job_dir = example_job("diabetes-classifier")
    submitted = stack.json(
        "submit", str(job_dir), "--dataset", dataset, "--param", "n_estimators=25",
        config=config,
    )  # fmt: skip
    assert set(submitted) >= {"id", "state", "code_digest"}
    assert submitted["state"] == "pending"
    assert submitted["code_digest"] == pack(job_dir).digest
    job_id = submitted["id"]
    mine = stack.json("jobs", config=config)
    assert job_id in {j["id"] for j in mine}

    # Owner: sees it pending, reviews it, approves it (holding a key, she acts with the config
    # that signs: her bare token alone acts for nobody).
    pending = stack.json("jobs", "--state", "pending", token=owner_token, config=olga_config)
    assert job_id in {j["id"] for j in pending}
    review = stack.json("review", job_id, token=owner_token, config=olga_config)
    assert review["job"]["id"] == job_id
    assert "train.py" in {f["name"] for f in review["files"]}
    assert review["previous"] is None
    assert review["job"]["spec"]["params"]["n_estimators"] == 25
    approved = stack.json(
        "approve", job_id, "--note", "looks fine", token=owner_token, config=olga_config
    )
    assert approved["state"] in {"approved", "running", "succeeded"}

    # The job runs; outputs wait for the owner's review.
    job = wait_state(stack, job_id, researcher_token, {"succeeded"})
    assert job["state"] == "succeeded", f"{job}\n{stack.logs()}"
    status = stack.json("status", job_id, config=config)
    assert set(status) >= {"id", "state", "reason", "dataset", "code_digest", "created", "finished"}
    not_yet = stack.c2d("fetch", job_id, "-o", str(tmp_path / "early"), config=config)
    assert not_yet.returncode == 2, not_yet.stderr
    assert "released" in not_yet.stderr
    assert not (tmp_path / "early" / "model.skops").exists()

    logs = stack.json("logs", job_id, token=owner_token, config=olga_config)
    assert "held-out accuracy" in logs["log"]
    assert logs["truncated"] is False
    released = stack.json("release", job_id, token=owner_token, config=olga_config)
    assert released["state"] == "released"

    # Researcher: fetch, verified against the outcome, the receipt and the pinned key.
    out = tmp_path / "result"
    fetched = stack.json("fetch", job_id, "-o", str(out), "--key", str(key_file), config=config)
    assert fetched["verified"] is True
    assert fetched["id"] == job_id
    assert Path(fetched["dir"]) == out
    names = {f["name"] for f in fetched["files"]}
    assert names == {"model.skops", "metrics.json"}
    for f in fetched["files"]:
        assert (out / f["name"]).stat().st_size == f["bytes"]
    assert set(fetched["metrics"]) >= {"accuracy", "roc_auc"}
    assert Path(fetched["receipt"]) == out / "receipt.json"
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "model.skops", "receipt.json"]

    # A download cut short earlier resumes with a Range request and ends byte-identical.
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    model_bytes = (out / "model.skops").read_bytes()
    (resumed / ".model.skops.c2d-part").write_bytes(model_bytes[: len(model_bytes) // 2])
    stack.json("fetch", job_id, "-o", str(resumed), config=config)
    assert (resumed / "model.skops").read_bytes() == model_bytes
    assert not (resumed / ".model.skops.c2d-part").exists()
    server_log = next(p for p in stack.procs if p.name == "server").log.read_text()
    assert f'/v1/jobs/{job_id}/artifacts/model.skops HTTP/1.1" 206' in server_log

    # The model loads outside with skops and predicts about as well as the metrics say.
    model_path = out / "model.skops"
    model = skops.io.load(model_path, trusted=skops.io.get_untrusted_types(file=model_path))
    data = pd.read_csv(patients_dir / "patients.csv")
    features = ["age", "bmi", "smoker", "glucose", "systolic_bp"]
    accuracy = float((model.predict(data[features]) == data["diabetes"]).mean())
    assert accuracy > 0.6
    assert abs(accuracy - fetched["metrics"]["accuracy"]) < 0.25

    # Anyone: the receipt verifies offline, the log verifies remotely and on disk.
    receipt = stack.json("receipt", "verify", str(out / "receipt.json"), "--key", str(key_file))
    assert receipt["subject"] == job_id
    types = [e["type"] for e in receipt["entries"]]
    # The dry run on mock data runs beside the job and may record its entry at any point.
    run = [t for t in types if t != "job.dryrun"]
    assert run[0] == "job.submitted"
    assert "job.approved" in run
    assert "job.finished" in run
    assert run[-1] == "job.released"
    # A c2d-receipt/2: the data host's signature over the outcome checks against the key
    # entry the receipt carries; people's actions are signed or marked as the operator's word.
    assert receipt["format"] == "c2d-receipt/2"
    actions = {a["type"]: a for a in receipt["actions"]}
    assert (actions["job.finished"]["verdict"], actions["job.finished"]["signer"]) == (
        "signed",
        "host:local",
    )
    assert "host.enrolled" in [e["type"] for e in receipt["keys"]]
    # It carries the owner's signed publication of the very digest the job ran on.
    assert receipt["publication"] == {
        "seq": receipt["dataset"]["seq"],
        "dataset": dataset,
        "digest": ds["digest"],
        "publisher": owner,
        "host": "local",
        "host_key": actions["job.finished"]["key"],
        "host_checked": True,
        "verdict": "signed",
        "key": olga_key["fingerprint"],
    }
    told = stack.c2d("receipt", "verify", str(out / "receipt.json"), "--key", str(key_file))
    assert told.returncode == 0, told.stderr
    assert (
        f"on dataset {dataset} (digest {ds['digest'][:19]}…) published by {owner} (key "
        f"{olga_key['fingerprint'][8:16]}…) on host local (key "
        f"{actions['job.finished']['key'][8:16]}…); in log "
    ) in told.stderr
    assert {actions[t]["verdict"] for t in ("job.submitted", "job.approved", "job.released")} <= {
        "signed",
        "unsigned",
    }
    remote = stack.json("ledger", "verify", "--key", str(key_file), token=researcher_token)
    assert remote["ok"] is True
    assert remote["first_bad"] is None
    assert remote["entries"] >= len(types)
    assert remote["signed"] >= 1
    local = stack.json("ledger", "verify", "--home", str(stack.home), "--key", str(key_file))
    assert local["ok"] is True
    shown = stack.json("ledger", "show", "--job", job_id, token=owner_token, config=olga_config)
    assert [e["type"] for e in shown] == types[: len(shown)]
    assert all(e["subject"] == job_id for e in shown)


def test_submit_wait_follows_to_the_end_and_trust_approves_by_policy(
    c2d_stack: Installation, patients_dir: Path, tmp_path: Path, example_job: MakeJob
) -> None:
    """After `c2d trust --any-params`, the researcher's same code is approved by policy, with
    other params too, so `--wait` runs unattended."""
    stack = c2d_stack
    owner, owner_token = stack.add_user("owner", "olga")
    researcher, researcher_token = stack.add_user("researcher", "rita")
    dataset = f"patients-{uuid.uuid4().hex[:6]}"
    stack.json(
        "dataset", "add", dataset, str(patients_dir), "--release-on-success", token=owner_token
    )
    job_dir = example_job("diabetes-classifier")
    first = stack.json("submit", str(job_dir), "--dataset", dataset, token=researcher_token)
    trusted = stack.json("trust", first["id"], "--any-params", token=owner_token)
    assert trusted["code_digest"] == first["code_digest"]
    assert trusted["dataset"] == dataset
    assert (trusted["researcher"], trusted["trusted_by"]) == (researcher, owner)
    assert (trusted["any_params"], trusted["params_digest"]) == (True, None)
    cancelled = stack.json("cancel", first["id"], token=researcher_token)
    assert cancelled["state"] == "cancelled"

    waited = stack.json(
        "submit", str(job_dir), "--dataset", dataset, "--param", "n_estimators=10", "--wait",
        token=researcher_token,
    )  # fmt: skip
    # Release on success is the dataset's policy here, so the job ends released.
    assert waited["state"] == "released", stack.logs()
    job = stack.json("status", waited["id"], token=researcher_token)
    assert job["approval"]["by_policy"] is True
    fetched = stack.json("fetch", waited["id"], "-o", str(tmp_path / "out"), token=researcher_token)
    assert fetched["verified"] is True
    assert json.loads((tmp_path / "out" / "metrics.json").read_text()) == fetched["metrics"]


def test_reject_ends_a_job_and_says_why(
    c2d_stack: Installation, patients_dir: Path, example_job: MakeJob
) -> None:
    stack = c2d_stack
    _, owner_token = stack.add_user("owner", "olga")
    _, researcher_token = stack.add_user("researcher", "rita")
    dataset = f"patients-{uuid.uuid4().hex[:6]}"
    stack.json("dataset", "add", dataset, str(patients_dir), token=owner_token)
    job_dir = example_job("bp-regression")
    job = stack.json("submit", str(job_dir), "--dataset", dataset, token=researcher_token)
    rejected = stack.json(
        "reject", job["id"], "--reason", "uses too many columns", token=owner_token
    )
    assert rejected["state"] == "rejected"
    seen = stack.json("status", job["id"], token=researcher_token)
    assert seen["state"] == "rejected"
    assert "too many columns" in (seen["reason"] or "")


def test_a_folder_is_one_owners_and_trust_is_one_researchers(
    c2d_stack: Installation, patients_dir: Path, example_job: MakeJob
) -> None:
    """The security issue's attacks, as people type them: a second owner registering the
    first one's folder, a folder outside the dataset roots, and a trusted code digest reused
    by another researcher, by the owner herself, or with other params."""
    stack = c2d_stack
    olga, olga_token = stack.add_user("owner", "olga")
    _, otto_token = stack.add_user("owner", "otto")
    bob, bob_token = stack.add_user("researcher", "bob")
    _, carol_token = stack.add_user("researcher", "carol")
    dataset = f"patients-{uuid.uuid4().hex[:6]}"
    stack.json("dataset", "add", dataset, str(patients_dir), token=olga_token)

    for folder, why in (
        (patients_dir, "another owner"),
        (patients_dir.parent, "another owner"),
        (Path("/etc"), "not inside a dataset root"),
        (stack.home, "state folder"),
    ):
        refused = stack.c2d("dataset", "add", "stolen", str(folder), token=otto_token)
        assert refused.returncode == 4, refused.stderr
        assert why in refused.stderr
        assert olga not in refused.stderr
    listed = {d["name"] for d in stack.json("dataset", "list", token=otto_token)}
    assert dataset in listed
    assert "stolen" not in listed

    job_dir = example_job("diabetes-classifier")
    submitted = stack.json("submit", str(job_dir), "--dataset", dataset, token=bob_token)
    first = stack.json("status", submitted["id"], token=bob_token)
    said = stack.c2d("trust", first["id"], token=olga_token)
    assert said.returncode == 0, said.stderr
    told = " ".join(said.stderr.split())
    assert f"for jobs of {bob} with params {first['params_digest']} only" in told
    assert "--any-params" in told
    stack.json("cancel", first["id"], token=bob_token)

    carol = stack.json("submit", str(job_dir), "--dataset", dataset, token=carol_token)
    own = stack.json("submit", str(job_dir), "--dataset", dataset, token=olga_token)
    other = stack.json(
        "submit", str(job_dir), "--dataset", dataset, "--param", "max_depth=3", token=bob_token
    )
    for job in (carol, own, other):
        assert job["code_digest"] == first["code_digest"]
        assert job["state"] == "pending"
        stack.json("cancel", job["id"], token=olga_token)
    same = stack.json("submit", str(job_dir), "--dataset", dataset, token=bob_token)
    assert same["state"] == "approved"
    approval = stack.json("status", same["id"], token=bob_token)["approval"]
    assert (approval["by_policy"], approval["approver"]) == (True, olga)
    stack.c2d("cancel", same["id"], token=bob_token)  # spares the worker; it may have run already
