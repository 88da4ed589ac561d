"""What an image says cannot change what runs: its ENTRYPOINT is not run, its VOLUMEs refused.

The owner approves job.yaml's command. An ENTRYPOINT would run first, with that command as mere
arguments; a VOLUME would give the job a writable, uncapped host volume past the read-only root.
"""

from __future__ import annotations

import dataclasses
import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from runner.errors import SandboxError
from tests.kit.sandbox import Sandbox

pytestmark = pytest.mark.docker


def _build(client: docker.DockerClient, base: str, lines: str) -> str:
    dockerfile = f"FROM {base}\n{lines}\n".encode()
    image, _ = client.images.build(
        fileobj=io.BytesIO(dockerfile), rm=True, pull=False, labels={"c2d.test": "image-config"}
    )
    return str(image.id)


@pytest.fixture
def box(docker_client, job_image, tmp_path: Path) -> Iterator[Sandbox]:  # type: ignore[no-untyped-def]
    sandbox = Sandbox(docker_client, job_image, tmp_path, "runc")
    try:
        yield sandbox
    finally:
        sandbox.close()


@pytest.fixture
def made_images(docker_client) -> Iterator[list[str]]:  # type: ignore[no-untyped-def]
    ids: list[str] = []
    yield ids
    for image_id in ids:
        docker_client.images.remove(image_id, force=True)


def test_image_entrypoint_is_not_run(box: Sandbox, docker_client, job_image, made_images) -> None:  # type: ignore[no-untyped-def]
    marker = f"entrypoint-ran-{uuid.uuid4().hex[:8]}"
    image = _build(docker_client, job_image, f'ENTRYPOINT ["echo", "{marker}"]')
    made_images.append(image)
    spec = box.spec("print('the reviewed command ran')")
    spec = dataclasses.replace(spec, image_id=image)
    result = box.executor.run(spec, box.store)
    assert result.succeeded, result.reason
    assert b"the reviewed command ran" in result.log
    assert marker.encode() not in result.log


def test_image_declaring_a_volume_is_refused_before_any_container(
    box: Sandbox, docker_client, job_image, made_images
) -> None:  # type: ignore[no-untyped-def]
    image = _build(docker_client, job_image, "VOLUME /scratch")
    made_images.append(image)
    spec = box.spec("open('/scratch/x', 'w').write('y' * 10)")
    spec = dataclasses.replace(spec, image_id=image)
    with pytest.raises(SandboxError, match="declares VOLUME /scratch"):
        box.executor.prepare(spec)
    assert box.containers_of(spec.job_id) == []
