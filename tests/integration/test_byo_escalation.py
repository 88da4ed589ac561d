"""An image that says USER root and ships a setuid-root escalation still runs under the
sandbox's defaults: the runner's uid, no capabilities, no privilege gain, a read-only root and no
network. Proven from inside the job, through the real executor.

The sandbox never runs an image's ENTRYPOINT (only job.yaml's reviewed command), so the attack
is made the way a researcher still could: by naming the setuid binary in the command itself.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from runner.artifacts import ArtifactStore
from runner.host.images import BuiltImage, build_from_dockerfile
from runner.host.sandbox import Limits, SandboxSpec
from runner.host.sandbox.docker import DockerExecutor

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]
MiB = 1024 * 1024
TAG = "C2D-PROBE "

DOCKERFILE = """\
FROM c2d/python-ml:latest
USER root
# A setuid-root copy of Python: without no-new-privileges, running it gives euid 0.
RUN cp /usr/bin/python3.11 /usr/local/bin/rootpy && chmod 4755 /usr/local/bin/rootpy
COPY escalate.py /opt/escalate.py
ENTRYPOINT ["/usr/local/bin/rootpy", "/opt/escalate.py"]
"""

ESCALATE = r"""
import errno, json, os, subprocess, sys

def attempt(fn):
    try:
        fn()
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return line.split(":", 1)[1].strip()

def root_options():
    for line in open("/proc/mounts"):
        fields = line.split()
        if fields[1] == "/":
            return fields[3].split(",")

def up_interfaces():
    found = []
    for name in os.listdir("/sys/class/net"):
        flags = int(open(f"/sys/class/net/{name}/flags").read(), 16)
        if name != "lo" and flags & 0x1:  # IFF_UP
            found.append(name)
    return found

def connect():
    import socket
    with socket.create_connection(("192.0.2.1", 80), timeout=3):
        pass

def run(*cmd):
    done = subprocess.run(cmd, capture_output=True, text=True)
    return (done.stdout or done.stderr).strip()

found = {
    "uid": os.getuid(),
    "euid": os.geteuid(),
    "whoami": run("whoami"),
    "cap_eff": status("CapEff"),
    "cap_prm": status("CapPrm"),
    "no_new_privs": status("NoNewPrivs"),
    "child_euid": run("/usr/local/bin/rootpy", "-c", "import os; print(os.geteuid())"),
    "setuid_0": attempt(lambda: os.setuid(0)),
    "write_etc": attempt(lambda: open("/etc/c2d-owned", "w").close()),
    "chmod_passwd": attempt(lambda: os.chmod("/etc/passwd", 0o666)),
    "root_options": root_options(),
    "up_interfaces": up_interfaces(),
    "connect": attempt(connect),
}
print("C2D-PROBE " + json.dumps(found), flush=True)
if len(sys.argv) > 1:
    os.execvp(sys.argv[1], sys.argv[1:])
"""


@pytest.fixture
def escalating_image(
    docker_client: docker.DockerClient, job_image: str, tmp_path: Path
) -> Iterator[BuiltImage]:
    labels = {"c2d.test": uuid.uuid4().hex}
    folder = tmp_path / "job"
    folder.mkdir()
    (folder / "Dockerfile").write_text(DOCKERFILE)
    (folder / "escalate.py").write_text(ESCALATE)
    built = build_from_dockerfile(docker_client, folder, labels=labels)
    yield built
    with contextlib.suppress(docker.errors.APIError):
        docker_client.api.remove_image(built.image_id, force=True)


def probe_of(log: bytes) -> dict[str, Any]:
    for line in log.decode(errors="replace").splitlines():
        if line.startswith(TAG):
            found: dict[str, Any] = json.loads(line[len(TAG) :])
            return found
    raise AssertionError(f"the probe reported nothing; log:\n{log!r}")


def test_the_attack_works_without_the_sandbox_defaults(
    docker_client: docker.DockerClient, escalating_image: BuiltImage
) -> None:
    """Control: as a plain non-root container the setuid entrypoint does become root."""
    out = docker_client.containers.run(
        escalating_image.image_id,
        user="65534:65534",
        network_mode="none",
        labels={"c2d.test": uuid.uuid4().hex},
        remove=True,
    )
    probe = probe_of(out)
    assert probe["uid"] == 65534
    assert probe["euid"] == 0


def _run(
    docker_client: docker.DockerClient, image: BuiltImage, tmp_path: Path, command: tuple[str, ...]
) -> Any:
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / "job.py").write_text(
        "import json\njson.dump({'ran': 1}, open('/outputs/metrics.json', 'w'))\n"
    )
    spec = SandboxSpec(
        job_id=f"byo-{uuid.uuid4().hex[:12]}",
        image_id=image.image_id,
        command=command,
        code_dir=code,
        limits=Limits(memory_bytes=512 * MiB, timeout_s=120, outputs_bytes=4 * MiB),
    )
    executor = DockerExecutor(docker_client, tmp_path / "work")
    return executor.run(spec, ArtifactStore(tmp_path / "store"))


def test_the_image_entrypoint_is_not_run(
    docker_client: docker.DockerClient, escalating_image: BuiltImage, tmp_path: Path
) -> None:
    result = _run(docker_client, escalating_image, tmp_path, ("python3", "job.py"))
    assert TAG.encode() not in result.log  # the escalating entrypoint never ran
    assert result.succeeded, result.reason
    assert result.metrics == {"ran": 1.0}


def test_user_root_and_a_setuid_escalation_run_under_the_sandbox_defaults(
    docker_client: docker.DockerClient, escalating_image: BuiltImage, tmp_path: Path
) -> None:
    assert escalating_image.user == "root"
    assert escalating_image.entrypoint == ("/usr/local/bin/rootpy", "/opt/escalate.py")
    result = _run(
        docker_client,
        escalating_image,
        tmp_path,
        ("/usr/local/bin/rootpy", "/opt/escalate.py", "python3", "job.py"),
    )

    probe = probe_of(result.log)
    assert probe["uid"] != 0
    assert probe["euid"] != 0  # the setuid bit gave nothing
    assert probe["whoami"] != "root"
    assert probe["child_euid"] != "0"
    assert int(probe["cap_eff"], 16) == 0
    assert int(probe["cap_prm"], 16) == 0
    assert probe["no_new_privs"] == "1"
    assert probe["setuid_0"] == "EPERM"
    assert probe["write_etc"] == "EROFS"  # the root filesystem is read-only
    assert probe["chmod_passwd"] == "EROFS"
    assert "ro" in probe["root_options"]
    assert probe["up_interfaces"] == []  # loopback only
    assert probe["connect"] == "ENETUNREACH"
    # The escalation attempt ran, then handed over to the job's own script, which did its work.
    assert result.succeeded, result.reason
    assert result.metrics == {"ran": 1.0}
