"""A worker killed with SIGKILL in the middle of a job: the job still ends exactly once.

Real `c2d worker` processes, a real Redis and real containers. The lease is short (3 s) so the
new worker's reconciler notices the lost one quickly.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest
from control_kit import (
    Install,
    container_creations,
    flush_redis,
    installation,
    job_containers,
    make_dataset,
    make_job,
    remove_job_containers,
)
from prockit import redis_db_url, wait_for

from jobs.bundle import pack
from jobs.models import Job
from jobs.spec import JobSpec
from jobs.states import JobState

pytestmark = [pytest.mark.docker, pytest.mark.redis, pytest.mark.slow]

REDIS_DB = 12


@pytest.fixture
def install(tmp_path, redis_url, docker_client, job_image) -> Iterator[Install]:
    url = redis_db_url(redis_url, REDIS_DB)
    flush_redis(url)
    with installation(tmp_path, url, lease_s=3.0, redispatch_s=2.0) as made:
        yield made
        remove_job_containers(docker_client, [j.id for j in made.ctx.store.list_jobs()])
    flush_redis(url)


def approved_sleeper(install: Install, tmp, image: str, sleep: float) -> Job:
    owner, _ = install.user("owner", "olga")
    researcher, _ = install.user("researcher", "rita")
    dataset = install.dataset(owner, make_dataset(tmp / "data", rows=30))
    job_dir = make_job(tmp / "job", dataset, sleep=sleep)
    bundle = pack(job_dir)
    install.ctx.artifacts.put_bytes(bundle.data)
    spec = JobSpec.from_yaml(job_dir / "job.yaml")
    service = install.ctx.service
    job = service.submit(researcher, spec, None, bundle.digest, list(bundle.files), image)
    return service.approve(owner, job.id)


def running_container(docker_client, job_id: str):  # type: ignore[no-untyped-def]
    found = job_containers(docker_client, job_id)
    return found[0] if found and found[0].status == "running" else None


def test_sigkill_mid_job_then_a_new_worker_adopts_the_container(
    install, tmp_path, docker_client, job_image
):
    job = approved_sleeper(install, tmp_path, job_image, sleep=6)
    since = time.time()
    first = install.start_worker()
    # Approved in the test process, so no one sent it: the reconciler notices and sends it.
    container = wait_for(
        "the job's container to run",
        lambda: running_container(docker_client, job.id),
        60,
        install.logs_text(),
    )

    first.kill()
    container.reload()
    assert container.status == "running"  # the engine, not the worker, owns the container
    assert install.job(job.id).state is JobState.RUNNING

    install.start_worker()
    done = install.wait_final(job.id, timeout=90)

    types = install.entry_types(job.id)
    assert types.count("job.finished") == 1, types
    assert types.count("job.reclaimed") >= 1, types
    # The container kept running while no worker watched it, so the adopter collects a
    # complete run (its log read back from Docker's copy, and marked so).
    assert done.state is JobState.RELEASED, done.reason
    assert done.outcome is not None
    assert done.outcome.metrics == {"rows": 30.0}
    assert done.outcome.log_digest is not None
    log = install.ctx.artifacts.path(done.outcome.log_digest).read_text()
    assert "worker restarted" in log
    assert "done" in log
    assert len(container_creations(docker_client, job.id, since)) == 1  # adopted, not rerun
    wait_for(
        "the job's container to be removed",
        lambda: job_containers(docker_client, job.id) == [],
        30,
        install.logs_text(),
    )
    assert not (install.settings.code_dir / job.id).exists()
    assert not (install.settings.work_dir / job.id).exists()


def test_sigkill_and_a_removed_container_fail_the_job_with_a_reason(
    install, tmp_path, docker_client, job_image
):
    job = approved_sleeper(install, tmp_path, job_image, sleep=30)
    first = install.start_worker()
    container = wait_for(
        "the job's container to run",
        lambda: running_container(docker_client, job.id),
        60,
        install.logs_text(),
    )
    first.kill()
    container.remove(force=True)  # say, an operator cleaned up by hand

    install.start_worker()
    done = install.wait_final(job.id, timeout=60)

    assert done.state is JobState.FAILED
    assert "container is gone" in (done.reason or ""), done.reason
    assert install.entry_types(job.id).count("job.finished") == 1
    assert job_containers(docker_client, job.id) == []
    wait_for(
        "the reaper to remove the job's folder",
        lambda: not (install.settings.work_dir / job.id).exists(),
        30,
        install.logs_text(),
    )


def test_sigterm_hands_the_running_job_to_the_next_worker(
    install, tmp_path, docker_client, job_image
):
    job = approved_sleeper(install, tmp_path, job_image, sleep=6)
    since = time.time()
    first = install.start_worker()
    wait_for(
        "the job's container to run",
        lambda: running_container(docker_client, job.id),
        60,
        install.logs_text(),
    )

    first.popen.send_signal(signal.SIGTERM)
    first.popen.wait(60)  # a warm shutdown does not wait for the job to end

    assert running_container(docker_client, job.id) is not None
    assert "handed back" in first.log.read_text()
    install.start_worker()
    done = install.wait_final(job.id, timeout=90)

    assert done.state is JobState.RELEASED, done.reason
    types = install.entry_types(job.id)
    assert types.count("job.finished") == 1
    assert types.count("job.reclaimed") >= 1
    assert len(container_creations(docker_client, job.id, since)) == 1
