"""Dispatch over a real Redis to a real Celery worker process running real containers.

One installation for the module: `c2d server` and `c2d worker --concurrency 2` as processes,
on a Redis database of this module's own. Each test makes its own users, dataset and jobs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from jobs.bundle import pack
from jobs.spec import JobSpec
from jobs.states import JobState
from tests.kit.containers import container_creations, job_containers
from tests.kit.data import counting_job, make_dataset
from tests.kit.installation import Installation, module_installation
from tests.kit.procs import redis_db_url

pytestmark = [pytest.mark.docker, pytest.mark.redis, pytest.mark.slow]

REDIS_DB = 11


@pytest.fixture(scope="module")
def stack(tmp_path_factory, redis_url, docker_client, job_image) -> Iterator[Installation]:
    url = redis_db_url(redis_url, REDIS_DB)
    root = tmp_path_factory.mktemp("dispatch")
    # A long re-dispatch grace keeps the reconciler from adding messages of its own here;
    # its re-sending is tested in test_reconciler_live.py.
    with module_installation(root, url, docker_client, redispatch_s=120.0) as install:
        install.start_server()
        install.start_worker(concurrency=2)
        yield install
        for proc in install.procs:
            assert proc.alive(), proc.tail()


def test_approve_dispatches_runs_and_finishes(stack, tmp_path, docker_client):
    owner, owner_token = stack.user("owner", "olga")
    _, researcher_token = stack.user("researcher", "rita")
    dataset = stack.dataset(owner, make_dataset(tmp_path / "data", rows=40), review_outputs=False)
    job = stack.submit_http(researcher_token, counting_job(tmp_path / "job", dataset))
    assert job["state"] == "pending"

    approved_at = time.time()
    response = httpx.post(
        f"{stack.url}/v1/jobs/{job['id']}/approve",
        headers={"Authorization": f"Bearer {owner_token}"},
        json={"note": "fine"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    done = stack.wait_final(job["id"])

    assert done.state is JobState.RELEASED, f"{done.reason}\n{stack.logs()}"
    assert done.outcome is not None
    assert done.outcome.metrics == {"rows": 40.0}
    # A pre-approval dry run (job.dryrun) may land anywhere in between; it is no state change.
    assert [t for t in stack.entry_types(job["id"]) if t != "job.dryrun"] == [
        "job.submitted", "job.approved", "job.started", "job.finished", "job.released",
    ]  # fmt: skip
    created = container_creations(docker_client, job["id"], approved_at)
    assert len(created) == 1
    assert job_containers(docker_client, [job["id"]], dryruns=False) == []
    assert not (stack.host_settings.code_dir / job["id"]).exists()
    latency = created[0]["timeNano"] / 1e9 - approved_at
    print(f"\napprove -> container created: {latency * 1000:.0f} ms")


def test_the_same_task_delivered_twice_runs_once(stack, tmp_path, docker_client, job_image):
    owner, _ = stack.user("owner", "olga")
    researcher, _ = stack.user("researcher", "rita")
    dataset = stack.dataset(owner, make_dataset(tmp_path / "data"), review_outputs=False)
    job_dir = counting_job(tmp_path / "job", dataset, sleep=2)
    bundle = pack(job_dir)
    stack.ctx.artifacts.put_bytes(bundle.data)
    spec = JobSpec.from_yaml(job_dir / "job.yaml")
    service = stack.ctx.service
    job = service.submit(researcher, spec, None, bundle.digest, list(bundle.files), job_image)
    # Approved in the test process, so the API sends nothing: the test sends, twice.
    service.approve(owner, job.id)
    since = time.time()
    dispatcher = stack.dispatcher()
    try:
        assert dispatcher.send(job.id, "local")
        assert dispatcher.send(job.id, "local")
    finally:
        dispatcher.close()

    done = stack.wait_final(job.id)

    assert done.state is JobState.RELEASED, f"{done.reason}\n{stack.logs()}"
    types = stack.entry_types(job.id)
    assert types.count("job.started") == 1
    assert types.count("job.reclaimed") == 0
    assert types.count("job.finished") == 1
    assert len(container_creations(docker_client, job.id, since)) == 1
    assert done.attempts == 1
    # Both messages reached the worker: the second one was acked without running anything.
    worker_log = stack.logs()
    assert worker_log.count(f"job {job.id} not claimed") == 1, worker_log


def test_a_dataset_changed_after_approval_is_refused_and_no_container_starts(
    stack, tmp_path, docker_client, job_image
):
    owner, _ = stack.user("owner", "olga")
    _, researcher_token = stack.user("researcher", "rita")
    data = make_dataset(tmp_path / "data")
    dataset = stack.dataset(owner, data)
    job_dir = counting_job(tmp_path / "job", dataset)
    job = stack.submit_http(researcher_token, job_dir)
    stack.ctx.service.approve(owner, job["id"])  # in-process: nothing is dispatched yet
    (data / "rows.csv").write_text("x,y\n1,1\n")  # the owner's data changes after approval
    since = time.time()
    dispatcher = stack.dispatcher()
    try:
        assert dispatcher.send(job["id"], "local")
    finally:
        dispatcher.close()

    done = stack.wait_final(job["id"])

    assert done.state is JobState.FAILED
    assert "dataset digest changed" in (done.reason or ""), done.reason
    assert container_creations(docker_client, job["id"], since) == []
    # The dry run on mock data runs beside the job and may record its entry at any point.
    types = [t for t in stack.entry_types(job["id"]) if t != "job.dryrun"]
    assert types[-2:] == ["job.started", "job.finished"]
    assert not (stack.host_settings.code_dir / job["id"]).exists()
