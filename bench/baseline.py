"""The baseline of c2d's job benchmarks: the same container run bare with ``docker run --rm``.

``docker_run_args`` mirrors ``runner.host.sandbox.hardening.create_kwargs`` flag for flag, so the
baseline pays for the same limits, hardening and mounts; ``start_times`` reads when the engine
created or started containers from its own events, for c2d's jobs and the baseline's alike.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

IMAGE = "c2d/python-ml:latest"
BENCH_LABEL = "c2d.bench"
UID = GID = 65534


def docker_api(timeout: int = 120) -> Any:
    import docker

    return docker.from_env(timeout=timeout)


def image_id() -> str:
    """The local ID of the job image (``make image`` builds it)."""
    client = docker_api()
    try:
        return str(client.images.get(IMAGE).id)
    finally:
        client.close()


def docker_run_args(
    image: str,
    command: Sequence[str],
    *,
    data: Path,
    code: Path,
    outputs: Path,
    cpus: float = 1.0,
    memory: int = 512 * 1024 * 1024,
    tmp: int = 256 * 1024 * 1024,
    detach: bool = False,
    label: str = "1",
) -> list[str]:
    """``docker run --rm`` with the limits, mounts and hardening c2d gives a job.

    Mirrors ``runner.host.sandbox.hardening.create_kwargs`` flag for flag, except that /outputs is a
    plain folder (c2d's is a size-capped loop-mounted filesystem: part of what c2d adds).
    """
    fsize = max(10 * 1024 * 1024, tmp)
    return [
        "docker", "run", "--rm", *(["-d"] if detach else []),
        "--label", f"{BENCH_LABEL}={label}",
        "--hostname", "c2d-job", "--user", f"{UID}:{GID}", "--workdir", "/code",
        "-e", "HOME=/tmp", "-e", "TMPDIR=/tmp", "-e", "LANG=C.UTF-8",
        "--network", "none", "--read-only", "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges", "--init", "--ipc", "private",
        "--shm-size", str(min(64 * 1024 * 1024, memory // 4)),
        "--pids-limit", "256", "--memory", str(memory), "--memory-swap", str(memory),
        "--oom-score-adj", "1000", "--cpus", f"{cpus:g}",
        "--ulimit", "nofile=1024:1024", "--ulimit", f"fsize={fsize}:{fsize}",
        "--ulimit", "core=0:0",
        "--tmpfs", f"/tmp:rw,noexec,nosuid,nodev,size={tmp}",
        "--mount", f"type=bind,source={data},target=/data/bench,readonly",
        "--mount", f"type=bind,source={code},target=/code,readonly",
        "--mount", f"type=bind,source={outputs},target=/outputs",
        "--log-opt", "max-size=524288", "--log-opt", "max-file=2",
        image, *command,
    ]  # fmt: skip


def bare_dirs(root: Path) -> tuple[Path, Path]:
    """A code folder and an /outputs folder for the baseline containers."""
    code = root / "bare-code"
    outputs = root / "bare-outputs"
    code.mkdir(parents=True, exist_ok=True)
    outputs.mkdir(parents=True, exist_ok=True)
    code.chmod(0o755)
    os.chown(outputs, UID, GID)
    return code, outputs


def run_timed(argv: Sequence[str]) -> float:
    """Wall seconds of one process run to completion; raise if it fails."""
    t0 = time.perf_counter()
    done = subprocess.run(list(argv), capture_output=True, check=False)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])}... failed: {done.stderr.decode()[-2000:]}")
    return elapsed


def start_times(
    since: float, until: float, label: str = "c2d.job", event: str = "start"
) -> dict[str, float]:
    """When containers had ``event`` (Unix seconds), from the engine's events, by ``label``."""
    client = docker_api()
    try:
        events = client.events(
            since=int(since) - 1,
            until=int(until) + 1,
            filters={"type": "container", "event": event, "label": label},
            decode=True,
        )
        found: dict[str, float] = {}
        for seen in events:
            key = seen.get("Actor", {}).get("Attributes", {}).get(label, "")
            found.setdefault(key, int(seen["timeNano"]) / 1e9)
        return found
    finally:
        client.close()


def remove_bench_containers() -> None:
    """Remove every container the baselines started (by label)."""
    client = docker_api()
    try:
        for c in client.containers.list(all=True, filters={"label": BENCH_LABEL}):
            with suppress(Exception):
                c.remove(force=True)
    finally:
        client.close()
