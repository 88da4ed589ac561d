"""The reaper: removes job containers and job folders that nobody will finish.

A worker that dies mid-job leaves its container running and its ``/outputs`` mounted. Normally
the job's next worker adopts both (the container name is the per-host lock). The reaper deals
with what no one will adopt:

1. a container labelled ``c2d.job`` whose ``c2d.deadline`` passed more than ``grace_s`` ago
   (the executor kills at the deadline itself; the grace keeps the reaper out of its way);
2. a container labelled ``c2d.job`` whose job is not live (``is_live(job_id)`` is False:
   finished, cancelled, or unknown to the store);
3. a job folder under the executor's work root (with its loop-mounted outputs) whose job is not
   live and has no container left.

``is_live`` comes from the caller (the store knows which jobs are running or about to run), so
the reaper imports nothing of the job domain. It is safe to run at any time and from several
workers at once: every removal tolerates "already gone".
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from pathlib import Path

import docker
import docker.errors

from runner.host.sandbox.hardening import LABEL_DEADLINE, LABEL_JOB
from runner.host.sandbox.workdir import job_dirs, remove_job_dir

DEFAULT_GRACE_S = 60.0


def _deadline(labels: dict[str, str]) -> float:
    try:
        value = float(labels.get(LABEL_DEADLINE, "inf"))
    except ValueError:
        return -math.inf  # a mangled deadline is treated as long past
    return value if not math.isnan(value) else -math.inf


def reap(
    client: docker.DockerClient,
    is_live: Callable[[str], bool],
    now: float,
    *,
    work_root: Path | None = None,
    grace_s: float = DEFAULT_GRACE_S,
) -> list[str]:
    """Remove abandoned job containers (and job folders under ``work_root``); return job ids.

    A container is removed when its deadline plus ``grace_s`` is before ``now`` or its job is
    not live. A job folder is removed when its job is not live and it has no container.
    """
    reaped: list[str] = []
    with_container: set[str] = set()
    for container in client.containers.list(all=True, filters={"label": LABEL_JOB}):
        labels = container.labels or {}
        job_id = labels.get(LABEL_JOB, "")
        overdue = _deadline(labels) + grace_s < now
        if overdue or not is_live(job_id):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
            reaped.append(job_id)
        else:
            with_container.add(job_id)
    if work_root is not None:
        for jd in job_dirs(work_root):
            job_id = jd.root.name
            if job_id in with_container or (job_id not in reaped and is_live(job_id)):
                continue
            remove_job_dir(jd)
            if job_id not in reaped:
                reaped.append(job_id)
    return reaped
