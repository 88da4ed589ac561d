"""A worker killed with SIGKILL in the middle of a job: the job still ends exactly once.

Real `c2d worker` processes, a real Redis and real containers. The lease is short (3 s) so the
new worker's reconciler notices the lost one quickly.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest

from jobs.states import JobState
from tests.kit.containers import container_creations, job_containers
from tests.kit.installation import Installation, module_installation
from tests.kit.procs import redis_db_url, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.redis, pytest.mark.slow]

REDIS_DB = 12


@pytest.fixture
def install(tmp_path, redis_url, docker_client, job_image) -> Iterator[Installation]:
    url = redis_db_url(redis_url, REDIS_DB)
    with module_installation(tmp_path, url, docker_client, lease_s=3.0, redispatch_s=2.0) as made:
        yield made


def running_container(docker_client, job_id: str):  # type: ignore[no-untyped-def]
    found = job_containers(docker_client, [job_id], dryruns=False)
    return found[0] if found and found[0].status == "running" else None


def test_sigkill_mid_job_then_a_new_worker_adopts_the_container(
    install, tmp_path, docker_client, job_image
):
    job = install.approved_job(tmp_path, job_image, sleep=6, rows=30, review_outputs=False)[0]
    since = time.time()
    install.ensure("server")  # the control plane: it sends the job, the host reports to it
    first = install.start_worker()
    # Approved in the test process, so no one sent it: the reconciler notices and sends it.
    container = wait_for(
        "the job's container to run",
        lambda: running_container(docker_client, job.id),
        60,
        install.logs(),
    )

    first.kill()
    container.reload()
    assert container.status == "running"  # the engine, not the worker, owns the container
    assert install.load_job(job.id).state is JobState.RUNNING

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
    log = install.host_ctx.artifacts.path(done.outcome.log_digest).read_text()  # on the host
    assert "worker restarted" in log
    assert "done" in log
    assert len(container_creations(docker_client, job.id, since)) == 1  # adopted, not rerun
    wait_for(
        "the job's container to be removed",
        lambda: job_containers(docker_client, [job.id], dryruns=False) == [],
        30,
        install.logs(),
    )
    assert not (install.host_settings.code_dir / job.id).exists()
    assert not (install.host_settings.work_dir / job.id).exists()


def test_sigkill_and_a_removed_container_fail_the_job_with_a_reason(
    install, tmp_path, docker_client, job_image
):
    job = install.approved_job(tmp_path, job_image, sleep=30, rows=30)[0]
    install.ensure("server")  # the control plane: it sends the job, the host reports to it
    first = install.start_worker()
    container = wait_for(
        "the job's container to run",
        lambda: running_container(docker_client, job.id),
        60,
        install.logs(),
    )
    first.kill()
    container.remove(force=True)  # say, an operator cleaned up by hand

    install.start_worker()
    done = install.wait_final(job.id, timeout=60)

    assert done.state is JobState.FAILED
    assert "container is gone" in (done.reason or ""), done.reason
    assert install.entry_types(job.id).count("job.finished") == 1
    assert job_containers(docker_client, [job.id], dryruns=False) == []
    wait_for(
        "the reaper to remove the job's folder",
        lambda: not (install.host_settings.work_dir / job.id).exists(),
        30,
        install.logs(),
    )


def test_sigterm_hands_the_running_job_to_the_next_worker(
    install, tmp_path, docker_client, job_image
):
    job = install.approved_job(tmp_path, job_image, sleep=6, rows=30, review_outputs=False)[0]
    since = time.time()
    install.ensure("server")  # the control plane: it sends the job, the host reports to it
    first = install.start_worker()
    wait_for(
        "the job's container to run",
        lambda: running_container(docker_client, job.id),
        60,
        install.logs(),
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
