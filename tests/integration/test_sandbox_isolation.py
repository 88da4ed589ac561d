"""From inside a job: nothing but /outputs and /tmp is writable, the job is an unprivileged
user with no capabilities and no way to gain any, there is no Docker socket, and the
environment holds nothing of the host's.

One probe container per runtime reports everything; each assertion checks one promise.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from runner.host.sandbox.docker import DockerExecutor
from runner.host.sandbox.hardening import BASE_ENV, fsize_limit
from tests.kit.sandbox import RUNTIMES, SECRET, SMALL, Sandbox, make_sandbox, reported

pytestmark = pytest.mark.docker

CANARY = "c2d-canary-5be1d0f3a8"

PROBE = r"""
import ctypes, resource, subprocess

def write(path):
    def go():
        with open(path, "w") as f:
            f.write("x")
    return go

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return line.split()[1]
    return None

def mkdir(path):
    return lambda: os.mkdir(path)

def unix_connect(path):
    def go():
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(path)
    return go

def run_from(folder):
    def go():
        with open(f"{folder}/tool.sh", "w") as f:
            f.write("#!/bin/sh\necho ran\n")
        os.chmod(f"{folder}/tool.sh", 0o755)
        subprocess.run([f"{folder}/tool.sh"], check=True)
    return go

def fill(folder, mib):
    def go():  # files of 8 MiB, below the file size limit: only the mount's size may stop it
        for i in range(0, mib, 8):
            with open(f"{folder}/fill{i}", "wb") as f:
                for _ in range(8):
                    f.write(b"\1" * (1024 * 1024))
    return go

libc = ctypes.CDLL(None, use_errno=True)
report(
    # world-writable places: only a read-only mount can stop these
    open_writes={p: attempt(write(p)) for p in
                 ["/data/ds/secret.csv", "/data/ds/new.csv", "/code/job.py", "/code/new.py",
                  "/var/tmp/x", "/run/lock/x"]},
    root_writes={p: attempt(write(p)) for p in
                 ["/job/params.json", "/job/new", "/x", "/etc/passwd", "/usr/bin/x"]},
    mkdirs={p: attempt(mkdir(p)) for p in ["/data/ds/d", "/code/d", "/job/d", "/d"]},
    unlink_data=attempt(lambda: os.unlink("/data/ds/secret.csv")),
    chmod_data=attempt(lambda: os.chmod("/data/ds/secret.csv", 0o777)),
    outputs=attempt(write("/outputs/ok.txt")),
    tmp=attempt(write("/tmp/ok.txt")),
    data_readable=open("/data/ds/secret.csv").read(),
    uid=os.getuid(), euid=os.geteuid(), gid=os.getgid(), groups=os.getgroups(),
    cap_eff=status("CapEff"), cap_prm=status("CapPrm"), cap_bnd=status("CapBnd"),
    cap_amb=status("CapAmb"),
    no_new_privs=libc.prctl(39, 0, 0, 0, 0),  # PR_GET_NO_NEW_PRIVS
    no_new_privs_status=status("NoNewPrivs"),
    setuid_root=attempt(lambda: os.setuid(0)),
    sockets={p: os.path.exists(p) for p in ["/var/run/docker.sock", "/run/docker.sock"]},
    socket_connect={p: attempt(unix_connect(p))
                    for p in ["/var/run/docker.sock", "/run/docker.sock"]},
    mounts=open("/proc/self/mounts").read(),
    environ=dict(os.environ),
    init_environ=open("/proc/1/environ", "rb").read().decode(errors="replace"),
    exec_from_tmp=attempt(run_from("/tmp")),
    exec_from_outputs=attempt(run_from("/outputs")),
    fill_tmp=attempt(fill("/tmp", 64)),
    fill_shm=attempt(fill("/dev/shm", 160)),
    init=open("/proc/1/cmdline", "rb").read().split(b"\0")[0].decode(),
    rlimits={name: resource.getrlimit(getattr(resource, "RLIMIT_" + name.upper()))
             for name in ["nofile", "fsize", "core"]},
)
"""


@pytest.fixture(scope="module", params=RUNTIMES)
def sandbox(
    request: pytest.FixtureRequest,
    docker_client: docker.DockerClient,
    job_image: str,
    runsc_available: bool,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Sandbox]:
    root = tmp_path_factory.mktemp("isolation")
    for box in make_sandbox(request, docker_client, job_image, runsc_available, root):
        # A careless owner: world-writable data. Only the read-only mount stands in the way.
        box.data.chmod(0o777)
        (box.data / "secret.csv").chmod(0o666)
        yield box


@pytest.fixture(scope="module")
def seen(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What one probe job saw, run while this process holds secrets in its environment and
    its Docker client config names a proxy with a password."""
    config = tmp_path_factory.mktemp("docker-config")
    proxy = f"http://worker:{CANARY}@proxy.internal:3128"
    (config / "config.json").write_text(json.dumps({"proxies": {"default": {"httpProxy": proxy}}}))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("C2D_SECRET_CANARY", CANARY)
        env.setenv("AWS_SECRET_ACCESS_KEY", CANARY)
        env.setenv("DOCKER_CONFIG", str(config))
        client = docker.from_env()
        try:
            spec = sandbox.spec(PROBE)
            spec.code_dir.chmod(0o777)
            (spec.code_dir / "job.py").chmod(0o666)
            executor = DockerExecutor(client, sandbox.executor.work_root)
            return reported(executor.run(spec, sandbox.store))
        finally:
            client.close()


def test_data_code_job_and_root_cannot_be_written(seen: dict[str, Any], sandbox: Sandbox) -> None:
    assert {path: how for path, how in seen["open_writes"].items() if how != "EROFS"} == {}
    # Root-owned paths: gVisor checks permissions before the read-only mount, runc after.
    assert set(seen["root_writes"].values()) <= {"EROFS", "EACCES"}
    assert set(seen["mkdirs"].values()) == {"EROFS"}
    assert seen["unlink_data"] == "EROFS"
    assert seen["chmod_data"] in {"EROFS", "EPERM"}  # not the owner: EPERM comes first in gVisor
    assert (sandbox.data / "secret.csv").read_bytes() == SECRET
    assert sorted(p.name for p in sandbox.data.iterdir()) == ["secret.csv"]


def test_outputs_and_tmp_are_the_writable_places(seen: dict[str, Any]) -> None:
    assert seen["outputs"] == "ok"
    assert seen["tmp"] == "ok"
    assert seen["data_readable"] == SECRET.decode()


def test_tmp_is_capped_and_not_executable(seen: dict[str, Any]) -> None:
    assert seen["fill_tmp"] == "ENOSPC"  # 64 MiB into a 16 MiB /tmp
    assert seen["fill_shm"] == "ENOSPC"  # 160 MiB into a 64 MiB /dev/shm
    assert seen["exec_from_tmp"] in {"EACCES", "EPERM"}


def test_outputs_are_not_executable_under_runc(seen: dict[str, Any], sandbox: Sandbox) -> None:
    if sandbox.runtime != "runc":
        pytest.skip("gVisor does not carry the host mount's noexec into the sandbox")
    assert seen["exec_from_outputs"] == "EACCES"


def test_job_is_unprivileged_and_cannot_gain_privileges(
    seen: dict[str, Any], sandbox: Sandbox
) -> None:
    assert (seen["uid"], seen["euid"], seen["gid"]) == (65534, 65534, 65534)
    assert seen["cap_eff"] == "0000000000000000"
    assert seen["cap_prm"] == "0000000000000000"
    assert seen["cap_bnd"] == "0000000000000000"
    assert seen["no_new_privs"] == 1
    # gVisor's /proc/self/status has no NoNewPrivs line; prctl above asks its kernel directly.
    assert seen["no_new_privs_status"] == ("1" if sandbox.runtime == "runc" else None)
    assert seen["setuid_root"] == "EPERM"


def test_no_docker_socket(seen: dict[str, Any]) -> None:
    assert seen["sockets"] == {"/var/run/docker.sock": False, "/run/docker.sock": False}
    assert set(seen["socket_connect"].values()) <= {"ENOENT", "EACCES", "EROFS"}
    assert "docker.sock" not in seen["mounts"]


def test_environment_holds_nothing_of_the_host(
    seen: dict[str, Any], sandbox: Sandbox, docker_client: docker.DockerClient
) -> None:
    assert CANARY not in repr(seen["environ"])
    assert CANARY not in seen["init_environ"]
    image_env = docker_client.images.get(sandbox.image).attrs["Config"]["Env"] or []
    allowed = {e.split("=", 1)[0] for e in image_env} | set(BASE_ENV) | {"HOSTNAME"}
    init_keys = {e.split("=", 1)[0] for e in seen["init_environ"].split("\0") if e}
    assert init_keys <= allowed
    # Python itself adds LC_CTYPE (PEP 538) to its own copy; nothing else may appear.
    assert set(seen["environ"]) - {"LC_CTYPE"} <= allowed
    assert seen["environ"]["HOME"] == "/tmp"


def test_ulimits_hold(seen: dict[str, Any]) -> None:
    assert seen["rlimits"]["nofile"] == [SMALL.nofile, SMALL.nofile]
    assert seen["rlimits"]["fsize"] == [fsize_limit(SMALL)] * 2
    assert seen["rlimits"]["core"] == [0, 0]


def test_an_init_process_is_pid_1(seen: dict[str, Any]) -> None:
    assert seen["init"] == "/sbin/docker-init"
