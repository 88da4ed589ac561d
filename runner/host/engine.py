"""A data host's Docker engine, as the processes that need one hold it.

``Engine`` connects to the local engine on first use (so a process may start before it) and
makes the job executor and resolves environments to image IDs from it. The worker holds one;
the API holds one while it still builds and loads researchers' images at submission. Tests give
it their own executor or resolver instead of Docker.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from pathlib import Path

import docker
import docker.errors

from jobs.units import parse_size
from runner.errors import ServiceUnavailable
from runner.host.images.policy import ByoPolicy
from runner.host.sandbox.interface import Executor
from runner.livelog import LiveLogs
from runner.settings import Settings

ImageResolver = Callable[[str], str]


def docker_client() -> docker.DockerClient:
    """A client of the local Docker engine (``DOCKER_HOST`` is honoured by the SDK)."""
    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except docker.errors.DockerException as exc:
        raise ServiceUnavailable(
            f"the Docker engine does not answer ({exc}); start it with `make services`"
        ) from exc
    return client


def byo_policy_from(settings: Settings) -> ByoPolicy:
    """The host's rules for jobs' own images, from the settings."""
    bases = tuple(b.strip() for b in settings.byo_allowed_bases.split(",") if b.strip())
    return ByoPolicy(
        allowed_bases=bases,
        max_build_s=settings.byo_max_build_s,
        max_image_bytes=parse_size(settings.byo_max_image),
        max_layers=settings.byo_max_layers,
        max_archive_bytes=parse_size(settings.byo_max_archive),
        runtime=settings.runtime,
    )


class Engine:
    """The engine of this host, its job executor and its environments; thread-safe."""

    def __init__(
        self,
        work_dir: Path,
        *,
        executor: Executor | None = None,
        resolver: ImageResolver | None = None,
        live: LiveLogs | None = None,
    ) -> None:
        self.work_dir = work_dir
        self.live = live
        self._executor = executor
        self._resolver = resolver
        self._docker: docker.DockerClient | None = None
        self._lock = threading.Lock()

    def docker(self) -> docker.DockerClient:
        """The Docker client, connected on first use; ``ServiceUnavailable`` if none answers."""
        with self._lock:
            if self._docker is None:
                self._docker = docker_client()
            return self._docker

    def executor(self) -> Executor:
        """The job executor of this host (the Docker one unless a test gave another)."""
        if self._executor is None:
            from runner.host.sandbox.docker import DockerExecutor

            client = self.docker()
            with self._lock:
                if self._executor is None:
                    self._executor = DockerExecutor(client, self.work_dir, self.live)
        return self._executor

    def resolve_image(self, environment: str) -> str:
        """The local image ID of ``environment`` (never pulls)."""
        if self._resolver is not None:
            return self._resolver(environment)
        from runner.host.images.environments import resolve

        return resolve(self.docker(), environment)

    def close(self) -> None:
        """Close the Docker client (and the live logs' Redis), if opened."""
        if self.live is not None:
            self.live.close()
        if self._docker is not None:
            with contextlib.suppress(Exception):
                self._docker.close()
