"""Workers that die, stop or receive the same message twice while a job is theirs.

One installation for the module (API and a Redis of its own); each case starts the workers it
needs and kills or stops them as the fault says, then checks the four invariants. Leases are
3 s, so a lost worker's job is noticed within a few seconds by the next worker's reconciler.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from fault_invariants import check_invariants
from fault_kit import FaultStack, job_containers, job_folder, running_container, sleeper

from runner.installation import with_installation
from runner.settings import Settings
from runner.transport import TASK_RUN, key_prefix, queue_name
from tests.kit.containers import container_creations
from tests.kit.procs import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.redis, pytest.mark.slow, pytest.mark.faults]


def is_run_of(raw: bytes, job_id: str) -> bool:
    """Whether a raw queue message asks to run ``job_id`` (not to dry-run it)."""
    headers = json.loads(raw)["headers"]
    return bool(headers["task"] == TASK_RUN and headers["id"].startswith(job_id + "."))


def started_sleeper(
    stack: FaultStack, docker_client: Any, workdir: Path, seconds: float
) -> tuple[str, Any]:
    """Submit and approve a sleeper; return its id and its running container."""
    job_id = stack.submit(job_folder(workdir / "sleeper", sleeper(seconds)))
    stack.approve(job_id)
    container = wait_for(
        "the job's container to run",
        lambda: running_container(docker_client, job_id),
        60,
        stack.logs(),
    )
    return job_id, container


def test_sigkill_of_the_worker_mid_job_then_the_next_worker_adopts_it(
    stack, workdir, docker_client
):
    stack.stop_workers()
    since = time.time()
    first = stack.start_worker()
    job_id, container = started_sleeper(stack, docker_client, workdir, 6)

    first.kill()
    container.reload()
    assert container.status == "running"  # the engine, not the worker, owns the container
    stack.start_worker()
    job = stack.wait_ended(job_id, timeout=90)

    assert job["state"] == "released", job
    assert job["outcome"]["metrics"] == {"slept": 6}
    types = [e["type"] for e in stack.entries(job_id)]
    assert types.count("job.reclaimed") >= 1, types
    assert (
        len(container_creations(docker_client, job_id, since)) == 1
    )  # adopted, never started twice
    check_invariants(stack, [job_id], docker_client, workdir)


def test_a_graceful_worker_stop_mid_job_hands_it_to_the_next_worker(stack, workdir, docker_client):
    stack.stop_workers()
    since = time.time()
    first = stack.start_worker()
    job_id, _ = started_sleeper(stack, docker_client, workdir, 6)

    first.popen.send_signal(signal.SIGTERM)
    first.popen.wait(60)  # a warm stop does not wait for the job to end
    assert "handed back" in first.text()
    assert running_container(docker_client, job_id) is not None
    stack.start_worker()
    job = stack.wait_ended(job_id, timeout=90)

    assert job["state"] == "released", job
    assert len(container_creations(docker_client, job_id, since)) == 1
    check_invariants(stack, [job_id], docker_client, workdir)


def test_the_same_message_delivered_twice_runs_the_job_once(stack, workdir, docker_client):
    """A byte-identical copy of the job's message (what a redelivery is) sits in the queue.

    No worker runs while the API sends the message; the test copies it in Redis, then starts
    a worker of concurrency 2, so both copies are taken at once by two threads.
    """
    stack.stop_workers()
    settings = with_installation(
        Settings(home=stack.home, origin=stack.env["C2D_ORIGIN"], redis_url=stack.redis.url)
    )
    queue = key_prefix(settings) + queue_name("local")  # the one machine's data host
    redis = stack.redis.client()
    since = time.time()
    job_id = stack.submit(job_folder(workdir / "twice", sleeper(2)))
    stack.approve(job_id)

    def run_message() -> bytes | None:  # the queue also holds the job's dry-run message
        found = [m for m in redis.lrange(queue, 0, -1) if is_run_of(m, job_id)]
        return found[0] if found else None

    message = wait_for("the API to send the job", run_message, 30, stack.logs())
    redis.lpush(queue, message)
    assert redis.lrange(queue, 0, -1).count(message) == 2

    stack.start_worker(concurrency=2)
    job = stack.wait_ended(job_id, timeout=90)
    wait_for("both copies to be taken", lambda: redis.llen(queue) == 0, 30, stack.logs())
    redis.close()

    assert job["state"] == "released", job
    types = [e["type"] for e in stack.entries(job_id)]
    assert types.count("job.started") == 1, types
    assert "job.reclaimed" not in types, types
    assert len(container_creations(docker_client, job_id, since)) == 1
    check_invariants(stack, [job_id], docker_client, workdir)


def test_sigkill_of_the_worker_mid_dry_run_then_the_dry_run_is_done_again(
    stack, workdir, docker_client
):
    stack.stop_workers()
    first = stack.start_worker()
    since = time.time()
    job_id = stack.submit(job_folder(workdir / "dry", sleeper(4)))

    def dry_run_running() -> bool:
        return any(
            c.status == "running" and c.labels["c2d.job"] == f"{job_id}-dryrun"
            for c in job_containers(docker_client, [job_id])
        )

    wait_for("the dry run's container to run", dry_run_running, 60, stack.logs())
    first.kill()
    stack.start_worker()

    # Its lease runs out, the reconciler sends it again, the new worker adopts the container.
    stack.wait_dryrun(job_id, timeout=30)
    (entry,) = [e for e in stack.entries(job_id) if e["type"] == "job.dryrun"]
    assert entry["body"]["ok"] is True, entry
    assert (
        len(container_creations(docker_client, f"{job_id}-dryrun", since)) == 1
    )  # adopted, not run again
    stack.approve(job_id)
    assert stack.wait_ended(job_id, timeout=60)["state"] == "released"
    check_invariants(stack, [job_id], docker_client, workdir)
