"""The reconciler against a real Redis and a real Docker engine (passes run in-process).

The control plane's reconciler: a lost message is re-sent exactly once even by two reconcilers;
a queued job is left alone; an expired lease whose container still runs on the data host is sent
back to that host for adoption. The data host's reconciler: the reaper removes this
installation's leftovers and leaves other installations' containers alone.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from jobs.states import JobState
from runner.control.reconciler import Reconciler
from runner.host.preflight import prepare_run
from runner.host.reconciler import Reconciler as HostReconciler
from runner.transport import Dispatcher, key_prefix, queue_name
from tests.kit.containers import job_containers
from tests.kit.installation import Installation, module_installation
from tests.kit.procs import redis_db_url

pytestmark = [pytest.mark.docker, pytest.mark.redis]

REDIS_DB = 8


@pytest.fixture
def install(tmp_path, redis_url, docker_client, job_image) -> Iterator[Installation]:
    url = redis_db_url(redis_url, REDIS_DB)
    with module_installation(tmp_path, url, docker_client, lease_s=1.0, redispatch_s=1.0) as made:
        yield made


def queue_length(install: Installation) -> int:
    client = redis.Redis.from_url(install.settings.redis_url)
    try:
        return int(client.llen(key_prefix(install.settings) + queue_name("local")))
    finally:
        client.close()


def test_a_lost_message_is_sent_again_once_even_by_two_reconcilers(install, tmp_path, job_image):
    job = install.approved_job(tmp_path, job_image)[0]
    time.sleep(install.settings.redispatch_s + 0.2)
    first, second = install.dispatcher(), install.dispatcher()
    try:
        one = Reconciler(install.ctx, first).run_once()
        two = Reconciler(install.ctx, second).run_once()
        assert one.sent == [job.id]
        assert two.sent == []
        assert first.queued("local") == {job.id}
        assert queue_length(install) == 1
        # Long after, still queued (no worker here): never sent a second time.
        time.sleep(install.settings.redispatch_s + 0.2)
        assert Reconciler(install.ctx, first).run_once().sent == []
        assert queue_length(install) == 1
    finally:
        first.close()
        second.close()


def test_an_expired_lease_with_a_running_container_is_sent_for_adoption(
    install, tmp_path, docker_client, job_image
):
    job = install.approved_job(tmp_path, job_image, sleep=30)[0]
    claim = install.ctx.service.claim(job.id, "local@gone:1", 1.0)
    spec = prepare_run(install.host_ctx, claim.job)
    executor = install.host_ctx.executor()
    executor.prepare(spec)
    executor.start(spec)
    time.sleep(1.2)
    dispatcher = install.dispatcher()
    try:
        result = Reconciler(install.ctx, dispatcher).run_once()
        assert result.adopted == [job.id]
        assert result.failed == []
        # The job is live: the host's reaper leaves its container.
        assert HostReconciler(install.host_ctx).run_once().reaped == []
        assert dispatcher.queued("local") == {job.id}
        assert job_containers(docker_client, [job.id], dryruns=False)[0].status == "running"
        assert install.load_job(job.id).state is JobState.RUNNING
    finally:
        dispatcher.close()
        executor.cleanup(job.id)


def test_the_reaper_removes_a_finished_jobs_leftovers_but_not_strangers(
    install, tmp_path, docker_client, job_image, test_labels
):
    job = install.approved_job(tmp_path, job_image, sleep=30)[0]
    claim = install.ctx.service.claim(job.id, "local@test:1", 60)
    spec = prepare_run(install.host_ctx, claim.job)
    executor = install.host_ctx.executor()
    executor.prepare(spec)
    executor.start(spec)
    install.ctx.service.cancel(install.ctx.store.get_user(job.researcher), job.id, "stop")
    # A container of a job this installation does not know (another one on the same engine).
    stranger = docker_client.containers.create(
        job_image, ["sleep", "60"], labels={**test_labels, "c2d.job": "0a0a0a0a0a0a"}
    )
    try:
        result = HostReconciler(install.host_ctx).run_once()
        assert job.id in result.reaped
        assert job_containers(docker_client, [job.id], dryruns=False) == []
        assert not (install.host_settings.work_dir / job.id).exists()
        assert not (install.host_settings.code_dir / job.id).exists()
        stranger.reload()  # still there
        assert "0a0a0a0a0a0a" not in result.reaped
    finally:
        stranger.remove(force=True)


def test_sending_when_redis_is_down_is_refused_quietly(install):
    down = Dispatcher.for_settings(
        install.settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    )
    try:
        assert down.send("0123456789ab", "default") is False
    finally:
        down.close()


def test_installations_sharing_a_redis_database_do_not_see_each_others_queues(
    install, tmp_path, job_image
):
    job = install.approved_job(tmp_path, job_image)[0]
    other_settings = install.settings.model_copy(update={"installation": "0123456789abcdef"})
    mine, other = install.dispatcher(), Dispatcher.for_settings(other_settings)
    try:
        assert mine.send(job.id, "local")
        assert mine.queued("local") == {job.id}
        assert other.queued("local") == set()
    finally:
        mine.close()
        other.close()
