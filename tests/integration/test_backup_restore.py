"""A backup of a live installation comes back as a working one.

An installation runs a job on a dataset that holds outputs for review, through approval,
run (real worker, real Docker) and the owner's release. `c2d backup` copies its state folder
while the API is running and people are being added, `c2d restore` brings it back into a fresh
folder, and a new installation started on that folder serves the same log: `c2d ledger verify`
(the real CLI, against the key the operator published) checks it, and the researcher fetches
the old job's outputs with `c2d fetch`, digests and receipt verified.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kit.data import counting_job, make_dataset
from tests.kit.installation import C2D, Installation, installed, new_installation
from tests.kit.procs import redis_db_url
from tests.kit.redis import flush_redis

pytestmark = [pytest.mark.docker, pytest.mark.redis, pytest.mark.timeout(600)]

REDIS_DB = 14
RESTORED_REDIS_DB = 15


@pytest.fixture
def live(tmp_path: Path, redis_url: str, job_image: str) -> Iterator[Installation]:
    url = redis_db_url(redis_url, REDIS_DB)
    flush_redis(url)
    with installed(tmp_path / "live", url) as made:
        made.start_server()
        made.start_worker()
        yield made
    flush_redis(url)


def operator(install: Installation) -> dict[str, str]:
    """The operator's environment on the control plane's machine (its state folder)."""
    return {"C2D_HOME": str(install.home), "C2D_ORIGIN": install.env["C2D_ORIGIN"]}


def released_job(live: Installation, tmp_path: Path) -> tuple[str, str, dict[str, str]]:
    """A job run and released on the live installation: (job id, researcher's token, the
    sha256 of each output as the owner saw it before release)."""
    _, owner = live.add_user("owner", "olga")
    _, researcher = live.add_user("researcher", "rita")
    dataset = f"ds-{uuid.uuid4().hex[:6]}"
    data = make_dataset(tmp_path / "data")
    added = live.dataset_add(owner, dataset, data, "--review-outputs")
    assert added.returncode == 0, added.stderr
    job_dir = counting_job(tmp_path / "job", dataset)
    job = live.json("submit", str(job_dir), "--dataset", dataset, token=researcher)
    live.json("approve", job["id"], token=owner)
    done = live.json("status", job["id"], "--wait", token=owner, timeout=300)
    assert done["state"] == "succeeded", live.logs()
    outputs = {o["name"]: o["sha256"] for o in done["outcome"]["outputs"]}
    assert "result.txt" in outputs
    live.json("release", job["id"], token=owner)
    assert live.state(job["id"]) == "released"
    return job["id"], researcher, outputs


def test_a_backup_taken_while_the_api_runs_restores_to_a_working_installation(
    live: Installation, tmp_path: Path, redis_url: str
) -> None:
    job_id, researcher, outputs = released_job(live, tmp_path)
    published = live.home / "ledger.key.pub"

    # Back up while the API runs and keeps writing (people added meanwhile).
    backup_dir = tmp_path / "backups" / "one"
    running = subprocess.Popen(
        [str(C2D), "backup", str(backup_dir), "--include-key", "--json"],
        env=live.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for _ in range(3):
        live.add_user("researcher", "during")
    stdout, stderr = running.communicate(timeout=180)
    assert running.returncode == 0, stderr
    assert json.loads(stdout)["private_key"] is True
    assert "warning: the backup will hold the ledger's private key" in stderr
    second = live.c2d("backup", str(tmp_path / "backups" / "two"), "--json", env=operator(live))
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["private_key"] is False
    assert json.loads(second.stdout)["artifacts"] >= 1
    assert "the ledger's private key is not in it" in second.stderr

    # A restore into a folder that is not empty is refused, and the folder left as it was.
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    refused = live.c2d("restore", str(backup_dir), "--home", str(taken), env=operator(live))
    assert refused.returncode == 2
    assert "not empty" in refused.stderr
    assert [p.name for p in taken.iterdir()] == ["notes.txt"]

    # Restore into a fresh folder, checked against the key the operator published.
    url = redis_db_url(redis_url, RESTORED_REDIS_DB)
    flush_redis(url)
    restored = new_installation(
        tmp_path / "restored", url, origin=live.env["C2D_ORIGIN"], reconcile_s=1.0
    )
    done = live.json(
        "restore",
        str(backup_dir),
        "--home",
        str(restored.home),
        "--key",
        str(published),
        env=operator(live),
    )
    assert done["ledger"]["ok"] is True
    assert done["needs_key"] is False
    restored_entries = sqlite3.connect(f"file:{restored.db}?mode=ro", uri=True)
    with restored_entries:
        rows = restored_entries.execute(
            "SELECT canonical FROM ledger_entries ORDER BY seq"
        ).fetchall()
    restored_entries.close()
    live_rows = live.query("SELECT canonical FROM ledger_entries ORDER BY seq")
    assert [bytes(r[0]) for r in rows] == [bytes(r[0]) for r in live_rows[: len(rows)]]
    assert done["ledger_entries"] == len(rows)

    # The live installation is gone; the restored one takes over.
    live.stop()
    restored.admin_token = live.admin_token
    try:
        restored.start_server()
        verified = restored.json("ledger", "verify", "--key", str(published), token=researcher)
        assert verified["ok"] is True
        assert verified["entries"] >= len(rows)
        offline = restored.json("ledger", "verify", "--home", str(restored.home))
        assert offline["ok"] is True

        fetched = restored.json(
            "fetch", job_id, "-o", str(tmp_path / "out"), "--key", str(published), token=researcher
        )
        assert fetched["verified"] is True
        assert fetched["key"] != "served"
        got = {f["name"]: f["sha256"] for f in fetched["files"]}
        assert got == outputs
        for name, digest in outputs.items():
            data = (tmp_path / "out" / name).read_bytes()
            assert "sha256:" + hashlib.sha256(data).hexdigest() == digest
        receipt = restored.json(
            "receipt", "verify", str(tmp_path / "out" / "receipt.json"), "--key", str(published)
        )
        assert receipt["subject"] == job_id
        assert "job.released" in [e["type"] for e in receipt["entries"]]
        key = base64.b64decode(published.read_text())
        assert restored.ctx.ledger.public_key() == key

        # The data host keeps its own state folder. Pointed at the restored control plane, it
        # consumes the queue that control plane sends to: the installation's id, the prefix
        # of both, came back with the backup.
        restored.start_worker(home=live.host_home, C2D_API_URL=restored.url)
        _, owner = restored.add_user("owner", "otto")
        _, rosa = restored.add_user("researcher", "rosa")
        dataset = f"ds-{uuid.uuid4().hex[:6]}"
        added = restored.dataset_add(
            owner, dataset, make_dataset(tmp_path / "later"), "--review-outputs",
            host_home=live.host_home,
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        job = restored.json(
            "submit", str(counting_job(tmp_path / "later-job", dataset)), "--dataset", dataset,
            token=rosa,
        )  # fmt: skip
        restored.json("approve", job["id"], token=owner)
        after = restored.json("status", job["id"], "--wait", token=owner, timeout=120)
        assert after["state"] == "succeeded", restored.logs()
    finally:
        restored.stop()
        flush_redis(url)
