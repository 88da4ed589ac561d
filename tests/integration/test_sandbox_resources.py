"""A job cannot exhaust the host: processes, memory and time all end at the job's limits."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest

from runner.host.sandbox import State
from tests.kit.sandbox import SMALL, Sandbox

pytestmark = pytest.mark.docker

FORK_BOMB = r"""
import os, sys, time
# Every process forks for as long as it can; the first refusal each one meets is reported.
told = False
while True:
    try:
        os.fork()
    except OSError as e:
        if not told:
            print(f"fork refused: errno {e.errno}", flush=True)
            told = True
        time.sleep(0.05)
"""

MEMORY_BOMB = r"""
hoard = []
while True:
    block = bytearray(16 * 1024 * 1024)
    block[::4096] = b"x" * len(block[::4096])  # touch every page so it is really allocated
    hoard.append(block)
"""


def cgroup_limits(container_id: str) -> dict[str, str]:
    """The kernel's view of a container's limits, read on the host (cgroup v1 or v2)."""
    v1 = Path("/sys/fs/cgroup")
    if (v1 / "memory" / "docker" / container_id).is_dir():
        read = lambda ctrl, name: (v1 / ctrl / "docker" / container_id / name).read_text().strip()  # noqa: E731
        return {
            "memory": read("memory", "memory.limit_in_bytes"),
            "memory+swap": read("memory", "memory.memsw.limit_in_bytes"),
            "cpu": f"{read('cpu', 'cpu.cfs_quota_us')} {read('cpu', 'cpu.cfs_period_us')}",
            "pids": read("pids", "pids.max"),
        }
    v2 = v1 / "docker" / container_id
    if not v2.is_dir():
        v2 = v1 / "system.slice" / f"docker-{container_id}.scope"
    memory = (v2 / "memory.max").read_text().strip()
    swap = int((v2 / "memory.swap.max").read_text().strip())
    return {
        "memory": memory,
        "memory+swap": str(int(memory) + swap),
        "cpu": (v2 / "cpu.max").read_text().strip(),
        "pids": (v2 / "pids.max").read_text().strip(),
    }


def test_limits_are_in_force_in_the_kernel(sandbox: Sandbox) -> None:
    limits = dataclasses.replace(SMALL, cpus=0.5, memory_bytes=200 * 1024 * 1024, pids=100)
    spec = sandbox.spec("", command=["sleep", "60"], limits=limits)
    sandbox.executor.prepare(spec)
    sandbox.executor.start(spec)
    container = sandbox.client.containers.get(f"c2d-job-{spec.job_id}")
    assert cgroup_limits(container.id) == {
        "memory": str(200 * 1024 * 1024),
        "memory+swap": str(200 * 1024 * 1024),  # no swap on top of memory
        "cpu": "50000 100000",
        "pids": "100",
    }
    # Under host memory pressure the kernel kills the job before anything else.
    assert Path(f"/proc/{container.attrs['State']['Pid']}/oom_score_adj").read_text() == "1000\n"
    sandbox.executor.cleanup(spec.job_id)


def host_can_spawn(count: int = 20) -> bool:
    return all(subprocess.run(["true"], check=False).returncode == 0 for _ in range(count))


def test_fork_bomb_ends_at_the_pids_limit_and_the_host_is_unharmed(sandbox: Sandbox) -> None:
    limits = dataclasses.replace(SMALL, pids=64, timeout_s=6)
    spec = sandbox.spec(FORK_BOMB, limits=limits)
    ex = sandbox.executor
    ex.prepare(spec)
    ex.start(spec)
    ex.wait(spec.job_id, timeout=2)  # the bomb is at its limit within milliseconds
    assert host_can_spawn()
    while ex.wait(spec.job_id) is State.RUNNING:
        pass
    result = ex.collect(spec, sandbox.store)
    ex.cleanup(spec.job_id)
    assert not result.succeeded
    if sandbox.runtime == "runc":
        assert b"fork refused: errno 11" in result.log  # EAGAIN from the pids cgroup
        assert result.reason == "killed: timed out after 6 s"
    else:
        # gVisor's own threads count against the same pids limit: the sandbox dies with the bomb.
        assert result.exit_code != 0
    assert sandbox.containers_of(spec.job_id) == []
    assert host_can_spawn()


def test_memory_bomb_is_killed_as_out_of_memory(sandbox: Sandbox) -> None:
    limits = dataclasses.replace(SMALL, memory_bytes=128 * 1024 * 1024)
    result = sandbox.run(MEMORY_BOMB, limits=limits)
    assert result.oom
    assert not result.succeeded
    assert result.reason == "killed: out of memory (limit 128 MiB)"


def test_sleeping_job_is_killed_at_its_deadline_and_leaves_no_container(
    sandbox: Sandbox,
) -> None:
    limits = dataclasses.replace(SMALL, timeout_s=2)
    result = sandbox.run("", command=["sleep", "3600"], limits=limits)
    assert result.timed_out
    assert not result.succeeded
    assert result.reason == "killed: timed out after 2 s"
    assert sandbox.executor.status(sandbox.jobs[-1]) is State.ABSENT
