"""Attacks through a researcher's Dockerfile, against the real engine: they must all fail.

A build runs before anyone approves the job, so it is unreviewed code. These tests plant a
recorder (an HTTP server on every address of this host) and try to make a build reach it, read
another image, or run a step outside the job sandbox's limits; each must fail, and the recorder
must never be asked for anything.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from test_byo_build import TEST_LABEL, job_folder, remove_labelled

from runner.errors import BuildFailed, ByoError
from runner.host.images import ByoPolicy, build_from_dockerfile
from tests.kit.recorder import Recorder
from tests.kit.sandbox import RUNTIMES, pick_runtime

pytestmark = [pytest.mark.docker, pytest.mark.attack, pytest.mark.timeout(600)]
PROBE = "C2D-BUILD-PROBE "


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    found = Recorder()
    try:
        yield found
    finally:
        found.close()


@pytest.fixture
def labels(docker_client: docker.DockerClient, job_image: str) -> Iterator[dict[str, str]]:
    found = {TEST_LABEL: uuid.uuid4().hex}
    yield found
    remove_labelled(docker_client, found)


def attacks(url: str) -> list[str]:
    """Every spelling of 'make the host fetch URL' found so far."""
    add = f"ADD {url} /opt/secret.txt\n"
    body = f"USER root\nRUN true # `\n{add}RUN chmod 644 /opt/secret.txt\n"
    base = "FROM c2d/python-ml:latest\n"
    fetch = f"python3 -c 'import urllib.request; urllib.request.urlopen(\"{url}\", timeout=5)'"
    return [
        f"# foo=bar\n# escape=`\n{base}{body}",
        f"# escape=`\n{base}{body}",
        f"  # foo=bar\n# escape=`\n{base}{body}",
        f"\ufeff# foo=bar\n# escape=`\n{base}{body}",
        f"# foo=bar\r\n# escape=`\r\n{base}{body}".replace("\n", "\r\n"),
        f"# syntax=docker/dockerfile:1\n# escape=`\n{base}{body}",
        f"{base}{add}",
        f"{base}RUN <<EOF\n{fetch}\nEOF\n",
        f"{base}RUN {fetch}\n",
        f"{base}RUN --network=host {fetch}\n",
    ]


def test_no_spelling_of_a_dockerfile_makes_the_host_fetch_a_url(
    docker_client: docker.DockerClient,
    labels: dict[str, str],
    recorder: Recorder,
    tmp_path: Path,
) -> None:
    tried = 0
    for url in recorder.urls():
        for n, text in enumerate(attacks(url)):
            folder = job_folder(tmp_path / f"{tried}", text)
            tried += 1
            with contextlib.suppress(ByoError):
                build_from_dockerfile(docker_client, folder, labels=labels)
            assert recorder.seen == [], f"attack {n} on {url} reached the host: {text!r}"
    assert tried >= 20
    # The recorder itself answers, so its silence above means something.
    docker_client.containers.run(
        "c2d/python-ml:latest",
        [
            "python3",
            "-c",
            f"import urllib.request; urllib.request.urlopen('{recorder.bridge_url()}')",
        ],
        network_mode="bridge",
        remove=True,
    )
    assert recorder.seen == ["/secret.txt"]


def test_a_build_cannot_read_another_image_on_the_host(
    docker_client: docker.DockerClient, labels: dict[str, str], tmp_path: Path
) -> None:
    # Another researcher's image, or any image on the host that is not an allowed base.
    other = f"c2d-test/other-{uuid.uuid4().hex[:8]}:latest"
    docker_client.api.tag("c2d/debian-python:bookworm", *other.split(":"))
    try:
        for text in (
            f"FROM {other}\n",
            f"FROM c2d/python-ml:latest\nCOPY --from={other} /etc/os-release /x\n",
            f"FROM {docker_client.images.get(other).id}\n",
        ):
            folder = job_folder(tmp_path / uuid.uuid4().hex, text)
            with pytest.raises(ByoError, match="not an allowed base image"):
                build_from_dockerfile(docker_client, folder, labels=labels)
    finally:
        docker_client.api.remove_image(other, noprune=True)


def test_an_archive_is_copied_never_unpacked(
    docker_client: docker.DockerClient, labels: dict[str, str], tmp_path: Path
) -> None:
    # 208 bytes of bzip2 that the engine's ADD would unpack into 256 MiB outside any sandbox.
    import bz2
    import io
    import tarfile

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("zeros")
        info.size = 256 * 1024 * 1024
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    bomb = bz2.compress(raw.getvalue(), 9)
    assert len(bomb) < 1024
    folder = job_folder(
        tmp_path,
        "FROM c2d/python-ml:latest\nCOPY bomb.tar.bz2 /opt/\n"
        f"RUN python3 -c \"import os; print('{PROBE}', os.path.getsize('/opt/bomb.tar.bz2'))\"\n",
        {"bomb.tar.bz2": bomb},
    )
    built = build_from_dockerfile(docker_client, folder, labels=labels)
    assert f"{PROBE} {len(bomb)}" in built.build_log
    with pytest.raises(ByoError, match="ADD is not allowed"):
        build_from_dockerfile(
            docker_client,
            job_folder(
                tmp_path / "add",
                "FROM c2d/python-ml:latest\nADD bomb.tar.bz2 /opt/\n",
                {"bomb.tar.bz2": bomb},
            ),
            labels=labels,
        )


STEP_PROBE = r"""
import ctypes, json, os, resource, socket
def first(path, key=None):
    try:
        text = open(path).read()
    except OSError as e:
        return type(e).__name__
    if key is None:
        return text.strip()
    return next((l.split(":", 1)[1].strip() for l in text.splitlines() if l.startswith(key)), None)
def connect(host):
    try:
        socket.create_connection((host, 6379), timeout=3).close()
        return "ok"
    except OSError as e:
        return type(e).__name__
print("C2D-BUILD-PROBE " + json.dumps({
    "uid": os.getuid(),
    "cap_eff": first("/proc/self/status", "CapEff"),
    "no_new_privs": ctypes.CDLL(None, use_errno=True).prctl(39, 0, 0, 0, 0),
    "rlimits": {n: resource.getrlimit(getattr(resource, "RLIMIT_" + n.upper()))
                for n in ("nofile", "fsize", "core")},
    "pids_max": first("/sys/fs/cgroup/pids/pids.max"),
    "memory_max": first("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
    "cpu_quota": first("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
    "interfaces": sorted(os.listdir("/sys/class/net")),
    "redis": connect("172.17.0.1"),
    "kernel": os.uname().release,
}), flush=True)
"""


def step_report(log: str) -> dict[str, Any]:
    for line in log.splitlines():
        if line.startswith(PROBE):
            found: dict[str, Any] = json.loads(line[len(PROBE) :])
            return found
    raise AssertionError(f"the build step reported nothing; log:\n{log}")


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_run_step_is_in_the_job_sandbox_even_as_root(
    docker_client: docker.DockerClient,
    labels: dict[str, str],
    tmp_path: Path,
    runtime: str,
    runsc_available: bool,
) -> None:
    policy = ByoPolicy(
        runtime=pick_runtime(runtime, runsc_available),  # type: ignore[arg-type]
        build_pids=77,
        build_memory_bytes=300 * 1024 * 1024,
        build_cpus=0.5,
    )
    folder = job_folder(
        tmp_path,
        "FROM c2d/python-ml:latest\nUSER root\nCOPY probe.py /opt/probe.py\n"
        "RUN python3 /opt/probe.py\n",
        {"probe.py": STEP_PROBE.encode()},
    )
    fsize = policy.max_image_bytes
    found = step_report(
        build_from_dockerfile(docker_client, folder, policy=policy, labels=labels).build_log
    )
    assert found["uid"] == 0  # USER root is honoured...
    assert int(found["cap_eff"], 16) == 0  # ...but root holds no capability
    assert found["no_new_privs"] == 1  # prctl asks the kernel (gVisor's /proc omits the line)
    assert found["rlimits"] == {"nofile": [1024, 1024], "fsize": [fsize, fsize], "core": [0, 0]}
    assert found["interfaces"] == ["lo"]
    assert found["redis"] != "ok"
    if runtime == "runc":  # gVisor shows its own kernel, without the host's cgroup files
        assert found["pids_max"] == "77"
        assert found["memory_max"] == str(300 * 1024 * 1024)
        assert found["cpu_quota"] == "50000"
        assert found["kernel"] == os.uname().release
    else:
        assert found["kernel"] != os.uname().release


def test_a_step_cannot_chown_or_escalate_with_setuid(
    docker_client: docker.DockerClient, labels: dict[str, str], tmp_path: Path
) -> None:
    folder = job_folder(tmp_path, "FROM c2d/python-ml:latest\nUSER root\nRUN chown 1000 /opt\n")
    with pytest.raises(BuildFailed, match="exit code 1") as caught:
        build_from_dockerfile(docker_client, folder, labels=labels)
    assert "Operation not permitted" in caught.value.build_log
