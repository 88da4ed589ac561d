"""The worker pipeline as a plain function with the real Docker executor (no Celery).

Cancellation reaching a running container, a stopping worker handing a job over to the next
one (which adopts the container), and a tampered bundle refused before any container exists.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from jobs.states import JobState
from runner.errors import TryLater
from runner.host.context import open_host_context
from runner.host.engine import Engine
from runner.host.pipeline import Ending, execute_job
from tests.kit.containers import container_creations, job_containers, remove_job_containers
from tests.kit.installation import Installation, installed
from tests.kit.ports import ServicePort
from tests.kit.procs import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture
def install(tmp_path, docker_client, job_image) -> Iterator[Installation]:
    # No Redis is used here; the URL only fills the setting.
    with installed(tmp_path, "redis://127.0.0.1:1/0", lease_s=2.0, heartbeat_s=0.3) as made:
        yield made
        remove_job_containers(docker_client, [j.id for j in made.ctx.store.list_jobs()])


def running(docker_client, job_id: str) -> bool:  # type: ignore[no-untyped-def]
    found = job_containers(docker_client, [job_id], dryruns=False)
    return bool(found) and found[0].status == "running"


def test_cancelling_a_running_job_removes_its_container(
    install, tmp_path, docker_client, job_image
):
    job, _, researcher = install.approved_job(tmp_path, job_image, sleep=60, rows=20)
    ended: list[Ending] = []
    worker = threading.Thread(
        target=lambda: ended.append(
            execute_job(install.host_ctx, job.id, "local@test:1", poll_s=0.2)
        )
    )
    worker.start()
    try:
        wait_for("the container to run", lambda: running(docker_client, job.id), 60)
        install.ctx.service.cancel(researcher, job.id, "wrong dataset")
        worker.join(30)
    finally:
        worker.join(60)
    assert ended == [Ending.CANCELLED]
    assert job_containers(docker_client, [job.id], dryruns=False) == []
    assert install.load_job(job.id).state is JobState.CANCELLED
    assert "job.finished" not in install.entry_types(job.id)
    assert not (install.host_settings.work_dir / job.id).exists()


def test_a_stopping_worker_leaves_the_container_to_the_next_which_adopts_it(
    install, tmp_path, docker_client, job_image
):
    job, _, _ = install.approved_job(tmp_path, job_image, sleep=3, rows=20, review_outputs=False)
    since = time.time()
    stop = threading.Event()
    stop.set()
    with pytest.raises(TryLater):
        execute_job(install.host_ctx, job.id, "local@test:1", stop=stop, poll_s=0.2)
    assert running(docker_client, job.id)

    # The next worker is another process: a fresh context and Docker executor.
    time.sleep(install.settings.lease_s + 0.5)
    settings = install.host_settings
    port = ServicePort(
        install.ctx.service, install.ctx.service.get_host("local"), install.ctx.artifacts
    )
    other = open_host_context(settings, control=port, engine=Engine(settings.work_dir))
    try:
        assert execute_job(other, job.id, "local@test:2", poll_s=0.2) is Ending.FINISHED
    finally:
        other.close()

    done = install.load_job(job.id)
    assert done.state is JobState.RELEASED, done.reason
    assert done.outcome is not None
    assert done.outcome.metrics == {"rows": 20.0}
    types = install.entry_types(job.id)
    assert (types.count("job.started"), types.count("job.reclaimed")) == (1, 1)
    assert types.count("job.finished") == 1
    assert len(container_creations(docker_client, job.id, since)) == 1
    assert job_containers(docker_client, [job.id], dryruns=False) == []


def test_a_tampered_bundle_is_refused_before_any_container(
    install, tmp_path, docker_client, job_image
):
    job, _, _ = install.approved_job(tmp_path, job_image, sleep=0, rows=20)
    host = install.host_ctx
    # The host's own copy of the bundle, changed after it was fetched and checked.
    blob = host.control.fetch_bundle(job, job.code_digest, host.artifacts)
    blob.chmod(0o644)
    blob.write_bytes(blob.read_bytes().replace(b"time.sleep", b"print    ("))
    since = time.time()

    assert execute_job(install.host_ctx, job.id, "local@test:1", poll_s=0.2) is Ending.FINISHED

    done = install.load_job(job.id)
    assert done.state is JobState.FAILED
    assert "code digest changed" in (done.reason or "")
    assert container_creations(docker_client, job.id, since) == []
    assert not (install.host_settings.code_dir / job.id).exists()


def test_a_bundle_changed_on_the_control_plane_is_refused_by_the_host(
    install, tmp_path, docker_client, job_image
):
    job, _, _ = install.approved_job(tmp_path, job_image, sleep=0, rows=20)
    blob = install.ctx.artifacts.path(job.code_digest)
    blob.chmod(0o644)
    blob.write_bytes(blob.read_bytes().replace(b"time.sleep", b"print    ("))
    since = time.time()

    assert execute_job(install.host_ctx, job.id, "local@test:1", poll_s=0.2) is Ending.FINISHED

    done = install.load_job(job.id)
    assert done.state is JobState.FAILED
    assert f"is not {job.code_digest}" in (done.reason or "")
    assert container_creations(docker_client, job.id, since) == []
    assert not install.host_ctx.artifacts.has(job.code_digest)
