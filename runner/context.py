"""Everything a c2d process works with, built from ``Settings`` in one place.

The API server, the worker and the reconciler each open one ``Context``: the store and the
ledger on the one database file, the ``Service`` over them, the artifact store, the host's
``Limits``, and, in a data host's processes, its Docker ``engine`` (``runner.host.engine``,
connected lazily because a process may start before the engine). Tests give an engine with
their own executor or image resolver. ``setup_logging`` is how every long-running process logs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from jobs.dataset_roots import DatasetRoots
from jobs.limits import Limits
from jobs.safe_text import escape
from jobs.service import Service
from jobs.store import Store
from jobs.units import parse_duration, parse_size
from ledger import Ledger
from runner.artifacts import ArtifactStore
from runner.errors import HomeNotInitialized, ServiceUnavailable
from runner.settings import Settings

if TYPE_CHECKING:
    import docker

    from runner.host.sandbox.interface import Executor


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


def check_home(settings: Settings) -> None:
    """Raise ``HomeNotInitialized`` unless ``c2d init`` has made ``settings.home``."""
    if not (settings.db_path.is_file() and settings.key_path.is_file()):
        raise HomeNotInitialized(
            f"{settings.home} holds no c2d installation (no {settings.db_path.name} or "
            f"{settings.key_path.name}); run `c2d init` first, or set C2D_HOME to the right folder"
        )


class Engine(Protocol):
    """A data host's Docker engine (``runner.host.engine.Engine``), as a context holds it."""

    def docker(self) -> docker.DockerClient: ...

    def executor(self) -> Executor: ...

    def resolve_image(self, environment: str) -> str: ...

    def close(self) -> None: ...


@dataclass
class Context:
    """One process's handles on the installation; share it between threads, ``close`` it last."""

    settings: Settings
    ledger: Ledger
    store: Store
    service: Service
    artifacts: ArtifactStore
    limits: Limits
    engine: Engine | None = None

    def _engine(self) -> Engine:
        if self.engine is None:
            raise ServiceUnavailable(
                "this process holds no Docker engine (only a data host's processes do)"
            )
        return self.engine

    def docker(self) -> docker.DockerClient:
        """The data host's Docker client (``runner.host.engine``)."""
        return self._engine().docker()

    def executor(self) -> Executor:
        """The data host's job executor."""
        return self._engine().executor()

    def resolve_image(self, environment: str) -> str:
        """The local image ID of ``environment`` on the data host (never pulls)."""
        return self._engine().resolve_image(environment)

    def close(self) -> None:
        """Close the database connections and the engine's client."""
        self.store.close()
        self.ledger.close()
        if self.engine is not None:
            self.engine.close()


def open_context(
    settings: Settings,
    *,
    engine: Engine | None = None,
    clock: Callable[[], float] | None = None,
) -> Context:
    """Open the installation at ``settings.home`` (which ``c2d init`` must have made); a data
    host's processes pass their ``engine``."""
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
        engine=engine,
    )


class SafeFormatter(logging.Formatter):
    """Log lines quote job-controlled text (reasons, names, errors); like the CLI, they show
    its control and invisible characters escaped, so a job cannot redraw the operator's
    terminal under `c2d up`. Line breaks stay (tracebacks)."""

    def format(self, record: logging.LogRecord) -> str:
        return escape(super().format(record), multiline=True)


def setup_logging() -> None:
    """Log INFO and above to stderr through ``SafeFormatter``."""
    handler = logging.StreamHandler()
    handler.setFormatter(SafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
