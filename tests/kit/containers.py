"""The job containers a test's installation left on the engine (labelled ``c2d.job``)."""

from __future__ import annotations

import time
from contextlib import suppress
from typing import Any

DRYRUN_SUFFIX = "-dryrun"


def job_containers(
    docker_client: Any, job_ids: list[str] | None = None, *, dryruns: bool = True
) -> list[Any]:
    """Containers (any state) labelled for one of ``job_ids`` (all of c2d's if None).

    A job's dry run has a container of its own, labelled ``<id>-dryrun``; it counts too unless
    ``dryruns`` is False.
    """
    import docker.errors

    wanted = None
    if job_ids is not None:
        wanted = {*job_ids, *(j + DRYRUN_SUFFIX for j in job_ids if dryruns)}
    for _ in range(5):  # the SDK inspects each listed container; one may vanish meanwhile
        with suppress(docker.errors.NotFound):
            found = docker_client.containers.list(all=True, filters={"label": "c2d.job"})
            return [c for c in found if wanted is None or c.labels.get("c2d.job") in wanted]
    return []


def running_container(docker_client: Any, job_id: str) -> Any:
    """The job's own container (not its dry run's) if it is running now, else None."""
    found = job_containers(docker_client, [job_id], dryruns=False)
    return found[0] if found and found[0].status == "running" else None


def remove_job_containers(docker_client: Any, job_ids: list[str]) -> None:
    """Remove what a failed test may have left (containers of these jobs and their dry runs)."""
    for container in job_containers(docker_client, job_ids):
        with suppress(Exception):
            container.remove(force=True)


def container_creations(docker_client: Any, job_id: str, since: float) -> list[dict[str, Any]]:
    """Docker's `create` events for the container of ``job_id`` since ``since``."""
    events = docker_client.events(
        since=int(since) - 1,
        until=int(time.time()) + 1,
        filters={"type": "container", "event": "create", "label": f"c2d.job={job_id}"},
        decode=True,
    )
    return list(events)
