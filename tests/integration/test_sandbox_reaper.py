"""The reaper removes job containers and output mounts nobody will finish, and nothing else."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from runner.host.reaper import reap
from runner.host.sandbox import Limits, SandboxSpec, State
from runner.host.sandbox.docker import DockerExecutor
from runner.host.sandbox.hardening import container_name
from runner.host.sandbox.workdir import job_dir

pytestmark = pytest.mark.docker


@pytest.fixture
def executor(docker_client: docker.DockerClient, tmp_path: Path) -> Iterator[DockerExecutor]:
    ex = DockerExecutor(docker_client, tmp_path / "work")
    yield ex
    for folder in (tmp_path / "code").iterdir():
        ex.cleanup(folder.name)


def sleeper(tmp_path: Path, image: str, name: str) -> SandboxSpec:
    job_id = f"{name}-{uuid.uuid4().hex[:8]}"
    code = tmp_path / "code" / job_id
    code.mkdir(parents=True)
    return SandboxSpec(job_id, image, ("sleep", "3600"), code, limits=Limits(timeout_s=600))


def exists(client: docker.DockerClient, job_id: str) -> bool:
    try:
        client.containers.get(container_name(job_id))
    except docker.errors.NotFound:
        return False
    return True


def test_reaper_removes_overdue_and_orphaned_jobs_only(
    docker_client: docker.DockerClient,
    job_image: str,
    test_labels: dict[str, str],
    executor: DockerExecutor,
    tmp_path: Path,
) -> None:
    live = sleeper(tmp_path, job_image, "live")
    overdue = sleeper(tmp_path, job_image, "overdue")
    orphan = sleeper(tmp_path, job_image, "orphan")
    stale_dir = sleeper(tmp_path, job_image, "stale")  # prepared by a worker that then died
    waiting = sleeper(tmp_path, job_image, "waiting")  # prepared, about to start: still live
    for spec in (live, overdue, orphan):
        executor.prepare(spec)
        executor.start(spec, deadline=time.time() + (1 if spec is overdue else 600))
    executor.prepare(stale_dir)
    executor.prepare(waiting)
    bystander = docker_client.containers.create(job_image, ["true"], labels=test_labels)

    ours = {s.job_id for s in (live, overdue, orphan, stale_dir, waiting)}
    still_live = {live.job_id, overdue.job_id, waiting.job_id}
    reaped = reap(
        docker_client,
        # Job ids this test did not make belong to other installations on the same engine
        # (as the reconciler treats them): live, not ours to judge.
        lambda job_id: job_id in still_live or job_id not in ours,
        now=time.time() + 120,  # the overdue job's deadline is well past, with grace
        work_root=executor.work_root,
        grace_s=60,
    )

    assert sorted(set(reaped) & ours) == sorted([overdue.job_id, orphan.job_id, stale_dir.job_id])
    assert exists(docker_client, live.job_id)
    assert not exists(docker_client, overdue.job_id)
    assert not exists(docker_client, orphan.job_id)
    assert executor.status(live.job_id) is State.RUNNING
    assert executor.status(waiting.job_id) is State.PREPARED
    for gone in (overdue, orphan, stale_dir):
        folder = job_dir(executor.work_root, gone.job_id)
        assert not folder.root.exists()
        assert not os.path.ismount(folder.outputs)
    bystander.reload()  # not a job container: untouched
    bystander.remove()
