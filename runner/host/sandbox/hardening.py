"""The container every job runs in: hardened defaults that no spec can loosen.

``create_kwargs`` is the one place the container's configuration is written. A ``SandboxSpec``
contributes only what it may choose: the image (by ID), the command, which folders are mounted
read-only where, and the size of limits that always exist. There is no field to open a network,
add a capability, run as root, mount anything writable but ``/outputs``, pass host environment,
or switch a limit off.

| default                         | how                                                       |
|---------------------------------|-----------------------------------------------------------|
| no network                      | ``network_mode="none"``, ``network_disabled``             |
| read-only root filesystem       | ``read_only=True``                                        |
| no capabilities                 | ``cap_drop=["ALL"]``                                      |
| no privilege gain (setuid etc.) | ``security_opt=["no-new-privileges"]``                    |
| non-root user                   | ``user=uid:gid`` (SandboxSpec refuses 0)                  |
| processes / threads             | ``pids_limit``                                            |
| memory, no swap                 | ``mem_limit == memswap_limit``; job first to go on host OOM |
| CPU                             | ``nano_cpus``                                             |
| open files, file size, no core  | ulimits ``nofile``, ``fsize``, ``core=0``                 |
| reaps zombies, forwards signals | ``init=True``                                             |
| scratch                         | ``/tmp`` tmpfs ``size=tmp_bytes,noexec,nosuid,nodev``     |
| logs                            | json-file driver, 2 files of ``log_bytes/2`` at most      |
| never pull                      | image given by ID; ``create`` never pulls                 |
| no Docker socket, no secrets    | only the mounts below; fixed env, no client proxy config  |
| deadline                        | label ``c2d.deadline``, enforced by the executor          |
| exactly the reviewed command    | the image's ENTRYPOINT is reset (``entrypoint=[""]``)     |
| no volumes from the image       | an image declaring VOLUME is refused in ``prepare``       |
"""

from __future__ import annotations

from typing import Any

from docker.types import LogConfig, Mount, Ulimit

from runner.host.sandbox.interface import Limits, SandboxSpec
from runner.host.sandbox.workdir import JobDir

LABEL_JOB = "c2d.job"
LABEL_DEADLINE = "c2d.deadline"
LABEL_TIMEOUT = "c2d.timeout_s"
HOSTNAME = "c2d-job"

JOB_TMP = "/tmp"  # noqa: S108 - the job's own private tmpfs inside its container, not the host's
BASE_ENV = {"HOME": JOB_TMP, "TMPDIR": JOB_TMP, "LANG": "C.UTF-8"}
"""The whole environment a job gets on top of its image's: nothing comes from the host."""

SHM_BYTES = 64 * 1024 * 1024
MIN_LOG_FILE = 64 * 1024


def container_name(job_id: str) -> str:
    """The container's name, which is also the per-host lock: one container per job."""
    return f"c2d-job-{job_id}"


def fsize_limit(limits: Limits) -> int:
    """RLIMIT_FSIZE: no single file may outgrow the larger of /outputs and /tmp."""
    return max(limits.outputs_bytes, limits.tmp_bytes)


def log_file_bytes(limits: Limits) -> int:
    """Size of each of Docker's two rotated log files (their JSON framing counts too)."""
    return max(limits.log_bytes // 2, MIN_LOG_FILE)


def mounts(spec: SandboxSpec, jd: JobDir) -> list[Mount]:
    """Datasets and code read-only, params read-only, /outputs read-write; nothing else."""
    found = [
        Mount(target=f"/data/{name}", source=str(path), type="bind", read_only=True)
        for name, path in sorted(spec.datasets.items())
    ]
    found += [
        Mount(target="/code", source=str(spec.code_dir), type="bind", read_only=True),
        Mount(target="/job", source=str(jd.job), type="bind", read_only=True),
        Mount(target="/outputs", source=str(jd.outputs), type="bind", read_only=False),
    ]
    return found


def create_kwargs(
    spec: SandboxSpec, jd: JobDir, *, deadline: float, timeout_s: int
) -> dict[str, Any]:
    """Keyword arguments of ``client.containers.create`` for the job's container."""
    limits = spec.limits
    fsize = fsize_limit(limits)
    return {
        "image": spec.image_id,
        "command": list(spec.command),
        # The owner approves job.yaml's command; an image's ENTRYPOINT would run before it
        # (with the command as mere arguments), so it is reset, not trusted.
        "entrypoint": [""],
        "name": container_name(spec.job_id),
        "hostname": HOSTNAME,
        "user": f"{spec.uid}:{spec.gid}",
        "working_dir": "/code",
        "environment": dict(BASE_ENV),
        # docker-py would copy the host's proxy settings (and any credentials in their URLs)
        # from ~/.docker/config.json into the job's environment.
        "use_config_proxy": False,
        "labels": {
            LABEL_JOB: spec.job_id,
            LABEL_DEADLINE: f"{deadline:.3f}",
            LABEL_TIMEOUT: str(timeout_s),
        },
        "runtime": spec.runtime,
        "network_mode": "none",
        "network_disabled": True,
        "read_only": True,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "privileged": False,
        "init": True,
        "ipc_mode": "private",
        "shm_size": min(SHM_BYTES, limits.memory_bytes // 4),
        "pids_limit": limits.pids,
        "mem_limit": limits.memory_bytes,
        "memswap_limit": limits.memory_bytes,
        "oom_score_adj": 1000,
        "nano_cpus": int(limits.cpus * 1e9),
        "ulimits": [
            Ulimit(name="nofile", soft=limits.nofile, hard=limits.nofile),
            Ulimit(name="fsize", soft=fsize, hard=fsize),
            Ulimit(name="core", soft=0, hard=0),
        ],
        "tmpfs": {JOB_TMP: f"rw,noexec,nosuid,nodev,size={limits.tmp_bytes}"},
        "mounts": mounts(spec, jd),
        "log_config": LogConfig(
            type="json-file",
            config={"max-size": str(log_file_bytes(limits)), "max-file": "2"},
        ),
        "stdin_open": False,
        "tty": False,
        "auto_remove": False,
    }
