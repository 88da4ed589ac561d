"""Clean-up of researchers' images: after the retention period, never while a job needs them.

The images are built on tiny imported bases (no time, no disk). ``remove_unused_images`` sees
every ``c2d/byo`` image on the host, so each call here lists all the ones this test did not make
as in use: the test can only ever remove its own.
"""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from runner.host.images import (
    LABEL_BYO,
    BuiltImage,
    ByoPolicy,
    build_from_dockerfile,
    remove_unused_images,
)
from runner.host.images.cleanup import last_touched
from runner.host.images.policy import lookup

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]
TEST_LABEL = "c2d.test"
HOUR = 3600.0


class Kit:
    """Tiny bases and images built on them, all labelled with the test's ``c2d.test`` value."""

    def __init__(self, client: docker.DockerClient, root: Path) -> None:
        self.client = client
        self.root = root
        self.labels = {TEST_LABEL: uuid.uuid4().hex}
        self.name = f"c2d-test/byo-{self.labels[TEST_LABEL][:12]}"
        self.containers: list[str] = []

    def base(self, tag: str | None) -> str:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            data = uuid.uuid4().hex.encode()
            info = tarfile.TarInfo("etc/c2d-test")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        out = self.client.api.import_image_from_data(
            buffer.getvalue(), changes=[f"LABEL {TEST_LABEL}={self.labels[TEST_LABEL]}"]
        )
        image_id = str(json.loads(out.splitlines()[0])["status"])
        if tag:
            self.client.api.tag(image_id, self.name, tag)
        return image_id

    def build(self, base: str) -> BuiltImage:
        folder = self.root / uuid.uuid4().hex
        folder.mkdir()
        (folder / "Dockerfile").write_text(f"FROM {base}\nCOPY f /f\n")
        (folder / "f").write_bytes(uuid.uuid4().bytes)
        policy = ByoPolicy(allowed_bases=(base,))
        return build_from_dockerfile(self.client, folder, policy=policy, labels=self.labels)

    def others(self, mine: set[str]) -> set[str]:
        """Every image clean-up could see that this test did not make."""
        ids = {str(i["Id"]) for i in self.client.api.images(name="c2d/byo")}
        ids |= {str(i["Id"]) for i in self.client.api.images(filters={"label": LABEL_BYO})}
        return ids - mine

    def cleanup(self) -> None:
        for container in self.containers:
            with contextlib.suppress(docker.errors.APIError):
                self.client.api.remove_container(container, force=True)
        selector = {"label": f"{TEST_LABEL}={self.labels[TEST_LABEL]}"}
        for listing in ({}, {"all": True}):
            for image in self.client.api.images(filters=selector, **listing):
                with contextlib.suppress(docker.errors.APIError):
                    self.client.api.remove_image(image["Id"], force=True)


@pytest.fixture
def kit(docker_client: docker.DockerClient, tmp_path: Path) -> Iterator[Kit]:
    found = Kit(docker_client, tmp_path)
    yield found
    found.cleanup()


def tarfile_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def copy_step_image(built: BuiltImage) -> str:
    """The intermediate image the build's COPY step made (a parent of the final image)."""
    lines = built.build_log.splitlines()
    start = next(n for n, line in enumerate(lines) if ": COPY f /f" in line)
    return next(line.split()[-1] for line in lines[start + 1 :] if line.startswith(" ---> "))


def test_unused_images_go_after_retention_and_used_ones_stay(
    docker_client: docker.DockerClient, kit: Kit
) -> None:
    base = kit.base("base")
    used, unused, held = (kit.build(f"{kit.name}:base") for _ in range(3))
    dangling = None  # a labelled build c2d could not tag (a crash between build and tag)
    for chunk in docker_client.api.build(
        fileobj=io.BytesIO(
            tarfile_of({"Dockerfile": f"FROM {kit.name}:base\nCOPY f /g\n".encode(), "f": b"x"})
        ),
        custom_context=True,
        labels={**kit.labels, LABEL_BYO: "dockerfile"},
        rm=True,
        forcerm=True,
        decode=True,
    ):
        dangling = chunk.get("aux", {}).get("ID", dangling)
    assert dangling is not None
    # Not labelled c2d.test: any test session ending meanwhile removes containers so labelled.
    container = docker_client.api.create_container(
        held.image_id, command=["/none"], labels={"c2d.byo-test": kit.labels[TEST_LABEL]}
    )
    kit.containers.append(container["Id"])
    mine = {used.image_id, unused.image_id, held.image_id, dangling}
    in_use = kit.others(mine) | {used.image_id}
    now = time.time()

    assert remove_unused_images(docker_client, in_use, HOUR, now) == []  # all are fresh

    before = time.time()
    removed = remove_unused_images(docker_client, in_use, HOUR, now + 2 * HOUR)
    assert sorted(removed) == sorted([unused.image_id, dangling])
    assert lookup(docker_client, unused.image_id) is None
    assert lookup(docker_client, copy_step_image(unused)) is None  # its build went with it
    assert lookup(docker_client, used.image_id) == used.image_id  # a job needs it
    assert lookup(docker_client, held.image_id) == held.image_id  # a container uses it
    assert lookup(docker_client, base) == base  # not c2d's to remove
    # Seen in use just now: its retention period starts again.
    assert last_touched(docker_client.api.inspect_image(used.image_id)) >= before - 1

    docker_client.api.remove_container(container["Id"], force=True)
    removed = remove_unused_images(docker_client, in_use, HOUR, now + 2 * HOUR)
    assert removed == [held.image_id]


def test_an_untagged_base_in_use_survives_the_removal_of_images_built_on_it(
    docker_client: docker.DockerClient, kit: Kit
) -> None:
    base = kit.base(tag=None)  # allowed by ID only: the engine's pruning would take it
    built = kit.build(base)
    in_use = kit.others({built.image_id}) | {base}
    removed = remove_unused_images(docker_client, in_use, HOUR, time.time() + 2 * HOUR)
    assert removed == [built.image_id]
    assert lookup(docker_client, copy_step_image(built)) is None
    assert lookup(docker_client, base) == base
