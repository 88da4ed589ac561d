"""Pre-built images (`docker save` archives) loaded by the real engine, under the host's policy.

Most archives here are built on a tiny base image imported for the test (a few bytes, so saving
and loading take no time); one is built on the default environment, as a researcher's would be.
Every image a test makes carries its ``c2d.test`` label and is removed afterwards.

The hostile archives (tests/archive_kit.py) aim at a tag the test owns, ``c2d-test/base-<hex>``
on its tiny base, allowed by the test's policy as ``c2d/python-ml:latest`` is by default: the
engine is shared, so no test ever aims at a real tag.
"""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

import runner.host.images.load
from runner.errors import ByoInvalid, ByoRefused, ByoTooLarge
from runner.host.images import ByoPolicy, load_archive
from runner.host.images.policy import lookup
from runner.host.images.tags import snapshot
from tests.kit.archives import annotated_archive, old_untagged_stream, smuggling_archive

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]
TEST_LABEL = "c2d.test"


class Images:
    """Makes the test's images, all labelled with its ``c2d.test`` value."""

    def __init__(self, client: docker.DockerClient, root: Path) -> None:
        self.client = client
        self.root = root
        self.labels = {TEST_LABEL: uuid.uuid4().hex}
        self.name = f"c2d-test/byo-{self.labels[TEST_LABEL][:12]}"

    def base(self) -> str:
        """A tiny imported image (one file, unique content), tagged so it is never pruned."""
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
        self.client.api.tag(image_id, self.name, "base")
        return image_id

    def build(self, dockerfile: str) -> str:
        """Build ``dockerfile`` (with one file ``f`` beside it) the ordinary way; its ID."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for name, data in {"Dockerfile": dockerfile.encode(), "f": uuid.uuid4().bytes}.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        buffer.seek(0)
        image_id = None
        for chunk in self.client.api.build(
            fileobj=buffer,
            custom_context=True,
            labels=self.labels,
            pull=False,
            rm=True,
            forcerm=True,
            network_mode="none",
            decode=True,
        ):
            assert "error" not in chunk, chunk
            image_id = chunk.get("aux", {}).get("ID", image_id)
        assert image_id is not None
        return str(image_id)

    def save(self, ref: str, name: str = "image.tar") -> Path:
        """``docker save ref`` into a file (by ID the archive carries no tag; by name, that)."""
        path = self.root / name
        with path.open("wb") as out:
            for chunk in self.client.api.get_image(ref):
                out.write(chunk)
        return path

    def remove(self, image_id: str) -> None:
        """Remove an image (it must be untagged or tagged only by the test) and its build."""
        self.client.api.remove_image(image_id, force=True)

    def cleanup(self) -> None:
        selector = {"label": f"{TEST_LABEL}={self.labels[TEST_LABEL]}"}
        for listing in ({}, {"all": True}):
            for image in self.client.api.images(filters=selector, **listing):
                with contextlib.suppress(docker.errors.APIError):
                    self.client.api.remove_image(image["Id"], force=True)


@pytest.fixture
def images(docker_client: docker.DockerClient, job_image: str, tmp_path: Path) -> Iterator[Images]:
    found = Images(docker_client, tmp_path)
    yield found
    found.cleanup()


def merge(archives: list[Path], dest: Path) -> Path:
    """One archive holding the images of several, as `docker save A B` writes it."""
    manifest: list[object] = []
    seen: set[str] = set()
    with tarfile.open(dest, "w") as out:
        for path in archives:
            with tarfile.open(path) as tar:
                for member in tar:
                    if member.name == "manifest.json":
                        manifest += json.load(tar.extractfile(member))  # type: ignore[arg-type]
                    elif member.name != "repositories" and member.name not in seen:
                        seen.add(member.name)
                        out.addfile(member, tar.extractfile(member) if member.isreg() else None)
        data = json.dumps(manifest).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        out.addfile(info, io.BytesIO(data))
    return dest


def test_a_good_archive_loads_untagged_and_is_pinned_by_id(
    docker_client: docker.DockerClient, images: Images
) -> None:
    base = images.base()
    victim = f"{images.name}:victim"
    docker_client.api.tag(base, images.name, "victim")  # a tag someone relies on
    made = images.build(f"FROM {images.name}:base\nCOPY f /f\n")
    docker_client.api.tag(made, images.name, "victim")  # the archive claims that tag...
    archive = images.save(victim)
    docker_client.api.tag(base, images.name, "victim")  # ...which here names the base
    images.remove(made)
    assert lookup(docker_client, made) is None

    policy = ByoPolicy(allowed_bases=(f"{images.name}:base",))
    built = load_archive(docker_client, archive, policy)

    assert built.image_id == made
    assert built.source == "archive"
    assert built.base == f"{images.name}:base"
    assert built.archive_tags == (victim,)
    assert lookup(docker_client, victim) == base  # the existing tag did not move
    assert lookup(docker_client, f"c2d/byo:{made[7:]}") == made


def test_an_archive_built_on_the_default_environment_loads(
    docker_client: docker.DockerClient, images: Images, job_image: str
) -> None:
    made = images.build("FROM c2d/python-ml:latest\nCOPY f /opt/f\nUSER 65534\n")
    archive = images.save(made)
    images.remove(made)
    built = load_archive(docker_client, archive)
    assert built.image_id == made
    assert built.base == "c2d/python-ml:latest"
    assert built.facts.base_id == job_image
    assert built.layers == built.facts.base_layers + 1


def test_an_archive_with_two_images_is_refused_and_nothing_is_loaded(
    docker_client: docker.DockerClient, images: Images
) -> None:
    images.base()
    one = images.build(f"FROM {images.name}:base\nCOPY f /one\n")
    two = images.build(f"FROM {images.name}:base\nCOPY f /two\n")
    archive = merge([images.save(one, "one.tar"), images.save(two, "two.tar")], images.root / "x")
    images.remove(one)
    images.remove(two)
    policy = ByoPolicy(allowed_bases=(f"{images.name}:base",))
    with pytest.raises(ByoInvalid, match="holds 2 images"):
        load_archive(docker_client, archive, policy)
    assert lookup(docker_client, one) is None
    assert lookup(docker_client, two) is None


def test_an_archive_not_built_on_an_allowed_base_is_refused_naming_them(
    docker_client: docker.DockerClient, images: Images
) -> None:
    images.base()
    made = images.build(f"FROM {images.name}:base\nCOPY f /f\n")
    archive = images.save(made)
    images.remove(made)
    with pytest.raises(ByoRefused) as caught:
        load_archive(docker_client, archive)  # the default policy: c2d/python-ml only
    assert "c2d/python-ml:latest" in str(caught.value)
    assert "nothing was loaded" in str(caught.value)
    assert lookup(docker_client, made) is None


def test_an_image_failing_the_gate_after_loading_is_removed_unless_it_was_here(
    docker_client: docker.DockerClient, images: Images
) -> None:
    images.base()
    made = images.build(f"FROM {images.name}:base\nVOLUME /scratch\n")
    archive = images.save(made)
    policy = ByoPolicy(allowed_bases=(f"{images.name}:base",))
    with pytest.raises(ByoRefused, match="VOLUME /scratch"):
        load_archive(docker_client, archive, policy)
    assert lookup(docker_client, made) == made  # it was here before: left as it was
    images.remove(made)
    with pytest.raises(ByoRefused, match="VOLUME /scratch"):
        load_archive(docker_client, archive, policy)
    assert lookup(docker_client, made) is None  # loaded by us, refused, removed


def test_archive_size_cap_refuses_before_reading(
    docker_client: docker.DockerClient, images: Images
) -> None:
    images.base()
    archive = images.save(f"{images.name}:base")
    with pytest.raises(ByoTooLarge, match="larger than"):
        load_archive(docker_client, archive, ByoPolicy(max_archive_bytes=1024))


class Target:
    """A test's own allowed base, tagged ``c2d-test/base-<hex>:latest``, and an image on it."""

    def __init__(self, client: docker.DockerClient, images: Images) -> None:
        self.client = client
        self.base = images.base()
        self.repo = f"c2d-test/base-{images.labels[TEST_LABEL][:12]}"
        self.ref = f"{self.repo}:latest"
        client.api.tag(self.base, self.repo, "latest")
        self.policy = ByoPolicy(allowed_bases=(self.ref,))
        self.made = images.build(f"FROM {self.ref}\nCOPY f /f\n")
        self.saved = images.save(self.made, "saved.tar")
        images.remove(self.made)

    def put_back(self) -> None:
        self.client.api.tag(self.base, self.repo, "latest")

    def tags(self) -> dict[str, str]:
        """The engine's tags that name the base or the image (others' tags may change)."""
        ids = {self.base, self.made}
        return {ref: image_id for ref, image_id in snapshot(self.client).items() if image_id in ids}


@pytest.fixture
def target(docker_client: docker.DockerClient, images: Images) -> Target:
    return Target(docker_client, images)


@pytest.mark.attack
def test_a_symlinked_manifest_moved_a_tag_through_the_old_replay_but_not_any_more(
    docker_client: docker.DockerClient, images: Images, target: Target
) -> None:
    attack = smuggling_archive(target.saved, images.root / "attack.tar", target.ref)
    before = target.tags()
    assert before[target.ref] == target.base

    # What c2d sent before this fix, straight to the engine: it moves the tag.
    try:
        for _ in docker_client.api.load_image(old_untagged_stream(attack)):
            pass
        assert lookup(docker_client, target.ref) == target.made
    finally:
        target.put_back()
        images.remove(target.made)
    assert target.tags() == before

    built = load_archive(docker_client, attack, target.policy)

    assert built.image_id == target.made
    assert built.base == target.ref
    assert lookup(docker_client, target.ref) == target.base
    assert target.tags() == {**before, f"c2d/byo:{target.made[7:]}": target.made}


@pytest.mark.attack
def test_a_load_that_moves_a_tag_anyway_is_undone_and_refused(
    docker_client: docker.DockerClient,
    images: Images,
    target: Target,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The check after the load, should an engine ever find a tag in what c2d sends."""
    attack = smuggling_archive(target.saved, images.root / "attack.tar", target.ref)
    before = target.tags()
    monkeypatch.setattr(
        runner.host.images.load, "rebuilt_stream", lambda path, _: old_untagged_stream(path)
    )
    try:
        with pytest.raises(ByoRefused, match="tried to retag an image") as caught:
            load_archive(docker_client, attack, target.policy)
    finally:
        if lookup(docker_client, target.ref) != target.base:
            target.put_back()  # only if the check failed to
    assert target.ref in str(caught.value)
    assert target.tags() == before
    assert lookup(docker_client, target.made) is None  # loaded by this call, so removed


@pytest.mark.attack
def test_index_json_annotations_naming_a_tag_move_nothing(
    docker_client: docker.DockerClient, images: Images, target: Target
) -> None:
    annotated = annotated_archive(target.saved, images.root / "oci.tar", target.ref)
    before = target.tags()
    try:
        built = load_archive(docker_client, annotated, target.policy)
    finally:
        if lookup(docker_client, target.ref) != target.base:
            target.put_back()
    assert built.image_id == target.made
    assert target.tags() == {**before, f"c2d/byo:{target.made[7:]}": target.made}
