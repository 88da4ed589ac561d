"""Two installations on one Redis database, on one machine, with the same (default) origin.

Each runs its own `c2d server` and `c2d host start` (both hosts are called ``local``, as
`c2d init` names them), and each runs several jobs at the same time. The reconciler's re-send
(``redispatch_s``) is far longer than the test waits, so a job whose message reached the other
installation's worker would never finish: every job of both must finish from its first message.

The second installation logs as JSON (``C2D_LOG_FORMAT=json``): every line its server and its
data host write is one JSON object, and each job's end is a line that names it.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
import redis

from jobs.states import JobState
from runner.transport import key_prefix
from tests.kit.containers import remove_job_containers
from tests.kit.data import counting_job, make_dataset
from tests.kit.installation import Installation, installed
from tests.kit.procs import redis_db_url, wait_for
from tests.kit.redis import flush_redis

pytestmark = [pytest.mark.docker, pytest.mark.redis, pytest.mark.slow]

REDIS_DB = 3
JOBS_EACH = 3
WAIT_S = 120.0
# What `c2d init` takes when C2D_ORIGIN is not set: the same on both installations.
DEFAULT_ORIGIN = f"c2d/{socket.gethostname()}"


@pytest.fixture
def pair(tmp_path, redis_url, docker_client, job_image) -> Iterator[list[Installation]]:
    url = redis_db_url(redis_url, REDIS_DB)
    flush_redis(url)
    made: list[Installation] = []
    with ExitStack() as stack:
        for name, log_format in (("first", "text"), ("second", "json")):
            install = stack.enter_context(
                installed(
                    tmp_path / name,
                    url,
                    origin=DEFAULT_ORIGIN,
                    redispatch_s=WAIT_S * 10,
                    dryrun=False,
                    log_format=log_format,
                )
            )
            install.start_server()
            install.start_worker(concurrency=2)
            made.append(install)
        try:
            yield made
        finally:
            for install in made:
                remove_job_containers(docker_client, install.job_ids())
    flush_redis(url)


def submit_and_approve(install: Installation, folder: Path) -> list[str]:
    """``JOBS_EACH`` counting jobs on a new dataset, submitted and approved over HTTP (the
    approval sends each to the host's queue once)."""
    owner, owner_token = install.add_user("owner")
    _, researcher_token = install.add_user("researcher")
    data = make_dataset(folder / "data", rows=20)
    added = install.dataset_add(owner_token, "rows", data, "--review-outputs")
    assert added.returncode == 0, added.stderr
    ids = []
    for n in range(JOBS_EACH):
        job = install.submit_http(researcher_token, counting_job(folder / f"job{n}", "rows"))
        ids.append(job["id"])
    for job_id in ids:
        response = httpx.post(
            f"{install.url}/v1/jobs/{job_id}/approve",
            headers={"Authorization": f"Bearer {owner_token}"},
            json={"note": "fine"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
    del owner
    return ids


def test_two_installations_on_one_redis_each_run_only_their_own_jobs(pair, tmp_path):
    first, second = pair
    assert first.settings.origin == second.settings.origin
    assert key_prefix(first.settings) != key_prefix(second.settings)
    jobs = {
        install.home: submit_and_approve(install, tmp_path / install.root.name) for install in pair
    }

    for install in pair:
        for job_id in jobs[install.home]:
            done = install.wait_final(job_id, timeout=WAIT_S)
            assert done.state is JobState.SUCCEEDED, f"{done.reason}\n{install.logs()}"
            assert install.entry_types(job_id).count("job.started") == 1

    logs = "\n".join(install.logs() for install in pair)
    assert "misrouted" not in logs, logs
    # Every key c2d wrote lies under one installation's prefix: queues, unacked messages,
    # bindings and send marks alike.
    prefixes = tuple(key_prefix(install.settings).encode() for install in pair)
    client = redis.Redis.from_url(redis_db_url(first.env["C2D_REDIS_URL"], REDIS_DB))
    try:
        keys = client.keys("*")
    finally:
        client.close()
    assert keys
    assert [k for k in keys if not k.startswith(prefixes)] == []
    for prefix in prefixes:
        assert any(k.startswith(prefix) for k in keys), (prefix, keys)

    lines = [json.loads(line) for p in second.procs for line in p.text().splitlines() if line]
    finished = {
        line["job_id"]: line["data_host"] for line in lines if line.get("event") == "job.finished"
    }
    assert finished == dict.fromkeys(jobs[second.home], "local")
    assert any(line["logger"] == "uvicorn.access" for line in lines)


def test_a_message_for_a_job_the_control_plane_does_not_know_is_logged_and_acked(pair):
    first = pair[0]
    stranger = "0123456789ab"  # no job of either installation
    sender = first.dispatcher()
    try:
        assert sender.send(stranger, "local")
    finally:
        sender.close()
    worker = first.live("worker")[0]

    warning = f"WARNING runner.host.pipeline: misrouted message: a run of job {stranger} arrived "
    wait_for("the worker to log the misrouted message", lambda: warning in worker.text(), WAIT_S)
    assert "on queue c2d.local " in worker.text()
    client = redis.Redis.from_url(first.settings.redis_url)
    try:
        unacked = key_prefix(first.settings) + "unacked"
        wait_for("the message to be acknowledged", lambda: client.hlen(unacked) == 0, WAIT_S)
    finally:
        client.close()
