"""Redis restarted while a job runs, with and without persistence.

Each case runs its own installation on its own ``redis-server`` (never the shared one on 6379)
and restarts that server while the job's container runs. The store, not Redis, holds the job,
so it must end exactly once either way; the worker and the API must reconnect by themselves,
which the canary proves (its message goes through the restarted Redis).

- without persistence the restart loses everything Redis held, the running job's
  unacknowledged message among it;
- with an append-only file (fsync per write) the unacknowledged message survives the restart.
  Should it ever be delivered again (Redis hands it out again after its visibility timeout),
  it must not run the finished job again: the case puts it back on the queue to prove that.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fault_invariants import check_invariants
from fault_kit import FaultStack, fault_stack, job_folder, running_container, sleeper

from runner.installation import with_installation
from runner.settings import Settings
from runner.transport import key_prefix, queue_name
from tests.kit.procs import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.redis, pytest.mark.slow, pytest.mark.faults]


def keys(stack: FaultStack) -> tuple[str, str]:
    """The installation's queue and its hash of unacknowledged messages in Redis."""
    settings = with_installation(
        Settings(home=stack.home, origin=stack.env["C2D_ORIGIN"], redis_url=stack.redis.url)
    )
    prefix = key_prefix(settings)
    return prefix + queue_name("local"), prefix + "unacked"


def unacked(stack: FaultStack, job_id: str) -> dict[bytes, bytes]:
    """The unacknowledged messages that run ``job_id`` (its dry run's are left out)."""
    client = stack.redis.client()
    try:
        found = client.hgetall(keys(stack)[1])
    finally:
        client.close()
    return {
        tag: raw
        for tag, raw in found.items()
        if json.loads(raw)[0]["headers"]["id"].startswith(job_id + ".")
    }


@pytest.mark.parametrize("persistent", [False, True], ids=["no-persistence", "append-only"])
def test_redis_restarted_mid_job(
    persistent: bool,
    tmp_path: Path,
    docker_client: Any,
    job_image: str,
    redis_server_binary: str,
) -> None:
    with fault_stack(tmp_path / "stack", docker_client, persistent_redis=persistent) as stack:
        stack.setup_people(tmp_path / "data")
        worker = stack.start_worker()
        job_id = stack.submit(job_folder(tmp_path / "job", sleeper(6)))
        stack.approve(job_id)
        wait_for(
            "the job's container to run",
            lambda: running_container(docker_client, job_id),
            60,
            stack.logs(),
        )
        assert len(unacked(stack, job_id)) == 1  # taken by the worker, not yet acknowledged

        stack.redis.restart(down_s=2)
        kept = unacked(stack, job_id)
        assert len(kept) == (1 if persistent else 0), kept

        job = stack.wait_ended(job_id, timeout=90)
        assert job["state"] == "released", job
        assert job["outcome"]["metrics"] == {"slept": 6}
        assert worker.alive(), worker.tail()
        check_invariants(stack, [job_id], docker_client, tmp_path)

        if persistent:
            assert unacked(stack, job_id) == {}  # acknowledged through the new connection
            redeliver(stack, job_id, kept)
            types = [e["type"] for e in stack.entries(job_id)]
            assert types.count("job.started") == 1, types
            assert "job.reclaimed" not in types, types
            check_invariants(stack, [job_id], docker_client, tmp_path)


def redeliver(stack: FaultStack, job_id: str, kept: dict[bytes, bytes]) -> None:
    """Put the surviving message back on the queue, as Redis does after its visibility timeout.

    (kombu keeps each unacknowledged message as ``[payload, exchange, routing key]``.)
    """
    queue, _ = keys(stack)
    client = stack.redis.client()
    try:
        for raw in kept.values():
            payload, _, _ = json.loads(raw)
            client.lpush(queue, json.dumps(payload))
        wait_for(
            "the worker to skip the redelivered message",
            lambda: f"job {job_id} not claimed" in stack.logs(),
            30,
            stack.logs(),
        )
    finally:
        client.close()
