"""Everything a data host's process works with, built from its ``Settings`` in one place.

A data host has a state folder of its own (``Settings.home`` on the host), which the control
plane never sees: its identity (``runner.host.identity``), its registry of datasets and outbox
(``runner.host.registry``), its own artifact store (the bundles it fetched, the outputs and logs
its jobs left, kept here until released or asked for), its work folders, its Docker ``engine``;
and the control plane as a ``ControlPort`` (``runner.host.port``), over HTTP unless a test gives
another.
"""

from __future__ import annotations

from dataclasses import dataclass

import docker

from jobs.limits import Limits
from runner.artifacts import ArtifactStore
from runner.context import limits_from
from runner.host.engine import Engine
from runner.host.identity import HostIdentity, load_identity
from runner.host.port import ControlPort
from runner.host.registry import Registry
from runner.host.sandbox.interface import Executor
from runner.settings import Settings


@dataclass
class HostContext:
    """One data host process's handles; share it between threads, ``close`` it last."""

    settings: Settings
    identity: HostIdentity
    control: ControlPort
    registry: Registry
    artifacts: ArtifactStore
    limits: Limits
    engine: Engine

    @property
    def name(self) -> str:
        """The host's name (and its queue's: ``c2d.NAME``)."""
        return self.identity.name

    def docker(self) -> docker.DockerClient:
        return self.engine.docker()

    def executor(self) -> Executor:
        return self.engine.executor()

    def resolve_image(self, environment: str) -> str:
        return self.engine.resolve_image(environment)

    def close(self) -> None:
        self.registry.close()
        self.engine.close()
        close = getattr(self.control, "close", None)
        if callable(close):
            close()


def open_host_context(
    settings: Settings,
    *,
    control: ControlPort | None = None,
    engine: Engine | None = None,
    identity: HostIdentity | None = None,
) -> HostContext:
    """Open the data host whose state folder is ``settings.home`` (``c2d host enroll`` made
    it); its control plane is the API it enrolled with unless ``control`` is given."""
    me = identity or load_identity(settings)
    if control is None:
        from runner.host.port_http import HttpPort

        control = HttpPort(me.api_url, me.credential, me.name)
    for folder in (settings.work_dir, settings.code_dir, settings.artifacts_dir):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return HostContext(
        settings=settings,
        identity=me,
        control=control,
        registry=Registry(settings.registry_path),
        artifacts=ArtifactStore(settings.artifacts_dir),
        limits=limits_from(settings),
        engine=engine or Engine(settings.work_dir),
    )
