"""Researchers' Dockerfiles built by the real engine: no network, allowed bases only, capped.

Every image a test makes carries the test's ``c2d.test`` label and is removed afterwards.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from jobs.bundle import pack
from runner.artifacts import ArtifactStore
from runner.errors import BuildFailed, BuildTimedOut, ByoRefused, ByoTooLarge
from runner.host.images import BuildCache, ByoPolicy, build_from_dockerfile, describe_image
from runner.host.images.policy import lookup
from runner.host.sandbox import Limits, RunResult, SandboxSpec
from runner.host.sandbox.docker import DockerExecutor

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]
MiB = 1024 * 1024
TEST_LABEL = "c2d.test"


def remove_labelled(client: docker.DockerClient, labels: dict[str, str]) -> None:
    """Remove every image carrying the test's label (leaves first, their parents pruned)."""
    selector = {"label": f"{TEST_LABEL}={labels[TEST_LABEL]}"}
    for listing in ({}, {"all": True}):
        for image in client.api.images(filters=selector, **listing):
            with contextlib.suppress(docker.errors.APIError):
                client.api.remove_image(image["Id"], force=True)


@pytest.fixture
def labels(docker_client: docker.DockerClient, job_image: str) -> Iterator[dict[str, str]]:
    """The test's labels; its images are removed when it ends."""
    found = {TEST_LABEL: uuid.uuid4().hex}
    yield found
    remove_labelled(docker_client, found)


def make_wheel(folder: Path, name: str = "c2dtiny", version: str = "1.0") -> Path:
    """A pure-Python wheel written by hand (no build tools needed): ``import c2dtiny``."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": b"VALUE = 42\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: c2d-test\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    files[f"{dist}/RECORD"] = ("\n".join([*record, f"{dist}/RECORD,,"]) + "\n").encode()
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return wheel


def job_folder(root: Path, dockerfile: str, files: dict[str, bytes] | None = None) -> Path:
    folder = root / "job"
    folder.mkdir(parents=True)
    (folder / "Dockerfile").write_text(dockerfile)
    for name, data in (files or {}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def step_image(log: str, step: str) -> str:
    """The ID of the image the build log says the step ``step`` made."""
    lines = log.splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("Step ") and step in line)
    return next(
        line.split()[-1]
        for line in lines[start + 1 :]
        if line.startswith(" ---> ") and "Running in" not in line and "Using cache" not in line
    )


def run_job(client: docker.DockerClient, image_id: str, root: Path, script: str) -> RunResult:
    """Run ``script`` as job.py in ``image_id`` through the real sandbox executor."""
    code = root / "code"
    code.mkdir()
    (code / "job.py").write_text(script)
    spec = SandboxSpec(
        job_id=f"byo-{uuid.uuid4().hex[:12]}",
        image_id=image_id,
        command=("python3", "job.py"),
        code_dir=code,
        outputs=("metrics.json",),
        limits=Limits(memory_bytes=512 * MiB, timeout_s=120, outputs_bytes=4 * MiB),
    )
    return DockerExecutor(client, root / "work").run(spec, ArtifactStore(root / "store"))


def test_a_vendored_wheel_is_installed_without_network_and_the_job_uses_it(
    docker_client: docker.DockerClient, labels: dict[str, str], tmp_path: Path
) -> None:
    folder = job_folder(
        tmp_path,
        "FROM c2d/python-ml:latest\n"
        "USER root\n"
        "COPY wheels /tmp/wheels\n"
        "RUN pip install --no-index --find-links /tmp/wheels --break-system-packages c2dtiny \\\n"
        "    && rm -rf /tmp/wheels\n"
        "USER 65534:65534\n",
    )
    make_wheel(folder / "wheels")
    built = build_from_dockerfile(docker_client, folder, labels=labels)
    assert built.base == "c2d/python-ml:latest"
    assert "Successfully installed c2dtiny-1.0" in built.build_log
    assert docker_client.images.get(f"c2d/byo:{built.image_id[7:]}").id == built.image_id

    result = run_job(
        docker_client,
        built.image_id,
        tmp_path,
        "import json, c2dtiny, sklearn\n"
        "json.dump({'value': c2dtiny.VALUE}, open('/outputs/metrics.json', 'w'))\n",
    )
    assert result.succeeded, result.log.decode(errors="replace")
    assert result.metrics == {"value": 42.0}


def test_a_base_that_is_not_allowed_is_refused_naming_the_allowed_ones(
    docker_client: docker.DockerClient, labels: dict[str, str], tmp_path: Path
) -> None:
    for base, why in [
        ("c2d/debian-python:bookworm", "is not an allowed base image"),  # present, not allowed
        ("python:3.11-slim", "is not on this host"),  # absent: refused, never pulled
    ]:
        folder = job_folder(tmp_path / base.replace("/", "_"), f"FROM {base}\nRUN id\n")
        with pytest.raises(ByoRefused) as caught:
            build_from_dockerfile(docker_client, folder, labels=labels)
        assert why in str(caught.value)
        assert "c2d/python-ml:latest" in str(caught.value)
        assert caught.value.build_log == ""
    assert (
        docker_client.api.images(all=True, filters={"label": f"c2d.test={labels[TEST_LABEL]}"})
        == []
    )


def test_a_run_that_tries_the_network_fails_saying_the_build_has_no_network(
    docker_client: docker.DockerClient, labels: dict[str, str], tmp_path: Path
) -> None:
    marker = uuid.uuid4().hex.encode()  # a layer no other build has, so it is new here
    folder = job_folder(
        tmp_path,
        "FROM c2d/python-ml:latest\n"
        "COPY marker.txt /opt/marker.txt\n"
        "RUN pip install --retries 1 --break-system-packages requests\n",
        {"marker.txt": marker},
    )
    with pytest.raises(BuildFailed) as caught:
        build_from_dockerfile(docker_client, folder, labels=labels)
    message = str(caught.value)
    assert "RUN pip install" in message
    assert "no network" in message
    assert "--no-index --find-links wheels" in message
    assert "Temporary failure in name resolution" in caught.value.build_log
    # The image the failed build made for its COPY step was removed with it.
    copied = step_image(caught.value.build_log, "COPY marker.txt")
    assert lookup(docker_client, copied) is None


def test_layer_cap_refuses_and_removes_the_image(
    docker_client: docker.DockerClient, labels: dict[str, str], tmp_path: Path, job_image: str
) -> None:
    base_layers = len(docker_client.images.get(job_image).attrs["RootFS"]["Layers"])
    folder = job_folder(
        tmp_path,
        "FROM c2d/python-ml:latest\nCOPY a /a\nCOPY b /b\nCOPY c /c\n",
        {"a": b"1", "b": b"2", "c": b"3"},
    )
    policy = ByoPolicy(max_layers=base_layers + 2)
    with pytest.raises(ByoTooLarge) as caught:
        build_from_dockerfile(docker_client, folder, policy=policy, labels=labels)
    assert f"has {base_layers + 3} layers, more than the {base_layers + 2}" in str(caught.value)
    assert "Successfully built" in caught.value.build_log
    assert docker_client.api.images(filters={"label": f"c2d.test={labels[TEST_LABEL]}"}) == []


def test_size_cap_refuses_a_large_image_and_removes_it(
    docker_client: docker.DockerClient, labels: dict[str, str], tmp_path: Path, job_image: str
) -> None:
    base_size = docker_client.images.get(job_image).attrs["Size"]
    # Each COPY fits in the room the cap leaves; together they do not.
    folder = job_folder(
        tmp_path,
        "FROM c2d/python-ml:latest\nCOPY a /opt/a\nCOPY b /opt/b\n",
        {"a": b"x" * (3 * MiB // 4), "b": b"y" * (3 * MiB // 4)},
    )
    policy = ByoPolicy(max_image_bytes=base_size + MiB)
    with pytest.raises(ByoTooLarge) as caught:
        build_from_dockerfile(docker_client, folder, policy=policy, labels=labels)
    assert "larger than the" in str(caught.value)
    assert docker_client.api.images(filters={"label": f"c2d.test={labels[TEST_LABEL]}"}) == []


def test_a_copy_past_the_size_cap_is_refused_before_it_reaches_the_engine(
    docker_client: docker.DockerClient, labels: dict[str, str], tmp_path: Path, job_image: str
) -> None:
    base_size = docker_client.images.get(job_image).attrs["Size"]
    folder = job_folder(
        tmp_path, "FROM c2d/python-ml:latest\nCOPY blob /opt/blob\n", {"blob": b"x" * 3 * MiB}
    )
    policy = ByoPolicy(max_image_bytes=base_size + MiB)
    with pytest.raises(ByoTooLarge) as caught:
        build_from_dockerfile(docker_client, folder, policy=policy, labels=labels)
    assert "line 2: COPY copies more than the 1 MiB" in str(caught.value)
    assert docker_client.api.images(filters={"label": f"c2d.test={labels[TEST_LABEL]}"}) == []


def test_a_step_that_writes_past_the_size_cap_is_stopped_while_it_runs(
    docker_client: docker.DockerClient, labels: dict[str, str], tmp_path: Path, job_image: str
) -> None:
    base_size = docker_client.images.get(job_image).attrs["Size"]
    folder = job_folder(
        tmp_path,
        "FROM c2d/python-ml:latest\nUSER root\n"
        "RUN head -c 100000000 /dev/zero > /opt/big && sleep 240\n",
    )
    policy = ByoPolicy(max_image_bytes=base_size + 20 * MiB)
    with pytest.raises(ByoTooLarge) as caught:
        build_from_dockerfile(docker_client, folder, policy=policy, labels=labels)
    assert "while building" in str(caught.value)
    assert "RUN head -c 100000000" in str(caught.value)


def test_build_time_cap_stops_the_build(
    docker_client: docker.DockerClient, labels: dict[str, str], tmp_path: Path
) -> None:
    folder = job_folder(tmp_path, "FROM c2d/python-ml:latest\nRUN sleep 240\n")
    policy = ByoPolicy(max_build_s=3)
    with pytest.raises(BuildTimedOut) as caught:
        build_from_dockerfile(docker_client, folder, policy=policy, labels=labels)
    assert "longer than 3 s" in str(caught.value)
    assert "RUN sleep 240" in str(caught.value)
    assert docker_client.api.images(filters={"label": f"c2d.test={labels[TEST_LABEL]}"}) == []


def test_rebuild_from_cache_gives_the_same_id_and_without_cache_a_new_one(
    docker_client: docker.DockerClient, labels: dict[str, str], tmp_path: Path
) -> None:
    folder = job_folder(
        tmp_path,
        "FROM c2d/python-ml:latest\nUSER root\nCOPY data.txt /opt/data.txt\n"
        "RUN cp /opt/data.txt /opt/copy.txt\nUSER 65534\n",
        {"data.txt": uuid.uuid4().hex.encode()},
    )
    cache = BuildCache(tmp_path / "cache")
    first = build_from_dockerfile(docker_client, folder, labels=labels, cache=cache)
    again = build_from_dockerfile(docker_client, folder, labels=labels, cache=cache)
    assert again.image_id == first.image_id
    assert again.build_log.count("Using cache") == 4
    # Not reproducible without the cache: every step's config records when it ran. This is
    # why a job is pinned to the ID built at submission, never rebuilt for the run.
    fresh = build_from_dockerfile(
        docker_client, folder, labels=labels, cache=cache, use_cache=False
    )
    assert fresh.image_id != first.image_id


def test_an_image_inheriting_a_volume_is_refused(
    docker_client: docker.DockerClient, labels: dict[str, str], tmp_path: Path, job_image: str
) -> None:
    # A base the owner allowed could itself declare a VOLUME; the gate checks the result.
    ctx = job_folder(tmp_path / "base", "FROM c2d/python-ml:latest\nVOLUME /scratch\n")
    built_base = None
    for chunk in docker_client.api.build(
        fileobj=io.BytesIO(pack(ctx).data),
        custom_context=True,
        labels=labels,
        network_mode="none",
        rm=True,
        forcerm=True,
        decode=True,
    ):
        built_base = chunk.get("aux", {}).get("ID", built_base)
    assert built_base is not None
    folder = job_folder(tmp_path / "job", f"FROM {built_base}\nUSER 65534\n")
    policy = ByoPolicy(allowed_bases=(built_base,))
    with pytest.raises(ByoRefused, match="VOLUME /scratch"):
        build_from_dockerfile(docker_client, folder, policy=policy, labels=labels)
    assert describe_image(docker_client, built_base, policy).volumes == ("/scratch",)
