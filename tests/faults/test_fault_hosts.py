"""Data hosts and the control plane failing apart: each keeps what it owns until the other is back.

One installation for the module (API and a Redis of its own, its local data host) and a second
data host, `b`, enrolled from a folder of its own with dataset roots of its own. The control
plane is killed while a job ends (the outcome waits in the host's outbox and is recorded once
when the API is back); a host's agent is killed mid-job while the other host goes on (its job
ends), and on restart it adopts its container.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fault_invariants import check_invariants
from fault_kit import FaultStack, job_containers, job_folder, running_container, sleeper

from runner.host.registry import Registry
from tests.kit.containers import container_creations
from tests.kit.procs import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.redis, pytest.mark.slow, pytest.mark.faults]

API_DOWN_S = 30.0


def types_of(stack: FaultStack, job_id: str) -> list[str]:
    return [e["type"] for e in stack.entries(job_id)]


@pytest.fixture(scope="module")
def host_b(stack: FaultStack, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """Host b enrolled into its own folder, and a dataset of the module's owner on it:
    (its folder, its dataset roots, the dataset's name)."""
    stack.ensure("server")
    home = tmp_path_factory.mktemp("host-b")
    roots = tmp_path_factory.mktemp("host-b-private")
    stack.add_host("b", home / "state", C2D_DATASET_ROOTS=str(roots))
    assert stack.people is not None
    data = roots / "rows"
    data.mkdir()
    (data / "rows.csv").write_text("x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(40)))
    done = stack.c2d(
        "dataset", "add", "b-rows", str(data), "--release-on-success",
        "--home", str(home / "state"), "--json",
        token=stack.people.owner_token, env={"C2D_DATASET_ROOTS": str(roots)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["policy"]["host"] == "b"
    return home / "state", str(roots), "b-rows"


def test_the_api_down_while_a_job_ends_keeps_the_outcome_on_the_host_and_records_it_once(
    stack, workdir, docker_client
):
    stack.stop_workers()
    stack.ensure("server")
    since = time.time()
    stack.start_worker()
    job_id = stack.submit(job_folder(workdir / "outbox", sleeper(3)))
    stack.approve(job_id)
    wait_for(
        "the job's container to run",
        lambda: running_container(docker_client, job_id),
        60,
        stack.logs(),
    )

    down_at = time.monotonic()
    for server in stack.live("server"):
        server.kill()
    outbox = Registry(stack.host_settings.registry_path)
    try:
        # The job ends with no control plane to tell: its outcome waits on the host.
        wait_for("the host to keep the outcome", lambda: job_id in outbox.kept(), 60, stack.logs())
    finally:
        outbox.close()
    time.sleep(max(0.0, API_DOWN_S - (time.monotonic() - down_at)))
    stack.start_server()
    job = stack.wait_ended(job_id, timeout=90)

    assert job["state"] == "released", job
    assert job["outcome"]["metrics"] == {"slept": 3}
    types = types_of(stack, job_id)
    assert types.count("job.finished") == 1, types
    assert types.count("job.started") == 1, types
    assert len(container_creations(docker_client, job_id, since)) == 1
    wait_for(
        "the outbox to be emptied",
        lambda: job_id not in Registry(stack.host_settings.registry_path).kept(),
        30,
        stack.logs(),
    )
    check_invariants(stack, [job_id], docker_client, workdir)


def test_a_host_killed_mid_job_leaves_the_other_running_and_adopts_its_container_on_restart(
    stack, workdir, docker_client, host_b
):
    b_home, b_roots, b_dataset = host_b
    stack.stop_workers()
    stack.ensure("server")
    since = time.time()
    local = stack.start_worker()
    b_agent = stack.start_worker(home=b_home, C2D_DATASET_ROOTS=b_roots)
    a_job = stack.submit(job_folder(workdir / "a", sleeper(8)))
    stack.approve(a_job)
    a_container = wait_for(
        "host local's container to run",
        lambda: running_container(docker_client, a_job),
        60,
        stack.logs(),
    )

    local.kill()
    b_job = stack.submit(job_folder(workdir / "b", sleeper(1)), dataset=b_dataset)
    stack.approve(b_job)
    b_done = stack.wait_ended(b_job, timeout=90)
    assert b_done["state"] == "released", b_done
    assert any(e["actor"].startswith("worker:b@") for e in stack.entries(b_job))
    # Host local's job is still its own: running on its engine, no one else took it.
    a_container.reload()
    assert a_container.status in ("running", "exited")
    assert stack.state(a_job) == "running"
    assert "job.finished" not in types_of(stack, a_job)

    stack.start_worker()  # host local is back
    a_done = stack.wait_ended(a_job, timeout=90)

    assert a_done["state"] == "released", a_done
    types = types_of(stack, a_job)
    assert types.count("job.finished") == 1, types
    assert types.count("job.reclaimed") >= 1, types
    assert (
        len(container_creations(docker_client, a_job, since)) == 1
    )  # adopted, never started twice
    assert all(e["actor"].startswith("worker:local@") for e in stack.entries(a_job)
               if e["type"] in ("job.started", "job.reclaimed"))  # fmt: skip
    wait_for(
        "host b's job container to be removed",
        lambda: job_containers(docker_client, [b_job]) == [],
        30,
        stack.logs(),
    )
    b_agent.stop()
    check_invariants(stack, [a_job], docker_client, workdir)
