"""Everything a c2d process works with, built from ``Settings`` in one place.

The API server, the worker and the reconciler each open one ``Context``: the store and the
ledger on the one database file, the ``Service`` over them, the artifact store, the host's
``Limits``, and (lazily, because the API may start before the engine) the Docker client and the
executor. Tests pass their own executor or image resolver instead of Docker.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from jobs.dataset_roots import DatasetRoots
from jobs.limits import Limits
from jobs.service import Service
from jobs.store import Store
from jobs.units import parse_duration, parse_size
from ledger import Ledger
from runner.artifacts import ArtifactStore
from runner.errors import HomeNotInitialized, ServiceUnavailable
from runner.settings import Settings

if TYPE_CHECKING:
    import docker

    from runner.host.images import ByoPolicy
    from runner.host.sandbox.interface import Executor

ImageResolver = Callable[[str], str]


def limits_from(settings: Settings) -> Limits:
    """The host's limits on any job, from the settings' human sizes and durations."""
    bundle = parse_size(settings.max_bundle)
    return Limits(
        max_cpus=settings.max_cpus,
        max_memory=parse_size(settings.max_memory),
        max_timeout=parse_duration(settings.max_timeout),
        max_outputs=parse_size(settings.max_outputs),
        max_bundle_bytes=bundle,
    )


def dataset_roots_from(settings: Settings) -> DatasetRoots:
    """Where datasets may be registered (and run from) on this host, from the settings."""
    return DatasetRoots.of(settings.dataset_root_paths, settings.home)


def byo_policy_from(settings: Settings) -> ByoPolicy:
    """The host's rules for jobs' own images, from the settings."""
    from runner.host.images import ByoPolicy

    bases = tuple(b.strip() for b in settings.byo_allowed_bases.split(",") if b.strip())
    return ByoPolicy(
        allowed_bases=bases,
        max_build_s=settings.byo_max_build_s,
        max_image_bytes=parse_size(settings.byo_max_image),
        max_layers=settings.byo_max_layers,
        max_archive_bytes=parse_size(settings.byo_max_archive),
        runtime=settings.runtime,
    )


def check_home(settings: Settings) -> None:
    """Raise ``HomeNotInitialized`` unless ``c2d init`` has made ``settings.home``."""
    if not (settings.db_path.is_file() and settings.key_path.is_file()):
        raise HomeNotInitialized(
            f"{settings.home} holds no c2d installation (no {settings.db_path.name} or "
            f"{settings.key_path.name}); run `c2d init` first, or set C2D_HOME to the right folder"
        )


def docker_client() -> docker.DockerClient:
    """A client of the local Docker engine (``DOCKER_HOST`` is honoured by the SDK)."""
    import docker
    import docker.errors

    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except docker.errors.DockerException as exc:
        raise ServiceUnavailable(
            f"the Docker engine does not answer ({exc}); start it with `make services`"
        ) from exc
    return client


@dataclass
class Context:
    """One process's handles on the installation; share it between threads, ``close`` it last."""

    settings: Settings
    ledger: Ledger
    store: Store
    service: Service
    artifacts: ArtifactStore
    limits: Limits
    _executor: Executor | None = None
    _docker: docker.DockerClient | None = None
    _resolver: ImageResolver | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

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
                    self._executor = DockerExecutor(client, self.settings.work_dir)
        return self._executor

    def resolve_image(self, environment: str) -> str:
        """The local image ID of ``environment`` (never pulls)."""
        if self._resolver is not None:
            return self._resolver(environment)
        from runner.host.images.environments import resolve

        return resolve(self.docker(), environment)

    def close(self) -> None:
        """Close the database connections and the Docker client."""
        self.store.close()
        self.ledger.close()
        if self._docker is not None:
            with contextlib.suppress(Exception):
                self._docker.close()


def open_context(
    settings: Settings,
    *,
    executor: Executor | None = None,
    resolver: ImageResolver | None = None,
    clock: Callable[[], float] | None = None,
) -> Context:
    """Open the installation at ``settings.home`` (which ``c2d init`` must have made)."""
    check_home(settings)
    ledger = Ledger(settings.db_path, settings.key_path, settings.origin)
    store = Store(settings.db_path)
    limits = limits_from(settings)
    roots = dataset_roots_from(settings)
    service = (
        Service(store, ledger, limits=limits, dataset_roots=roots)
        if clock is None
        else Service(store, ledger, clock=clock, limits=limits, dataset_roots=roots)
    )
    for folder in (settings.work_dir, settings.code_dir, settings.uploads_dir):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return Context(
        settings=settings,
        ledger=ledger,
        store=store,
        service=service,
        artifacts=ArtifactStore(settings.artifacts_dir),
        limits=limits,
        _executor=executor,
        _resolver=resolver,
    )
