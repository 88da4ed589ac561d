"""Data hosts in tests: enrolled with a real key against a real service, datasets attested.

``enroll_host`` adds a host as an admin and enrolls it from its own state folder the way
``c2d host enroll`` does, calling the service in-process instead of over HTTP.
``register_dataset`` does what ``c2d dataset add`` does on a host: hash, profile and sign the
folder there, record it on the control plane, then keep it in the host's registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs.models import Dataset, DatasetPolicy, User
from jobs.service import Service
from runner.host.datasets import attest_dataset, keep
from runner.host.identity import HostIdentity, enroll
from runner.host.registry import Registry
from runner.settings import Settings


@dataclass
class TestHost:
    """A data host's identity, registry and settings (its own state folder)."""

    __test__ = False

    settings: Settings
    identity: HostIdentity
    registry: Registry

    @property
    def name(self) -> str:
        return self.identity.name

    def close(self) -> None:
        self.registry.close()


def enroll_host(
    service: Service, admin: User, settings: Settings, name: str = "default", origin: str = ""
) -> TestHost:
    """Add host ``name`` and enroll it from ``settings.home`` (a folder of its own)."""
    _, token = service.add_host(admin, name)

    def call(_url: str, secret: str, public_key: str) -> dict[str, Any]:
        host, credential = service.enroll_host(secret, public_key)
        return {"name": host.name, "token": credential, "origin": origin}

    identity = enroll(settings, "http://control.invalid", token, call)
    return TestHost(settings, identity, Registry(settings.registry_path))


def register_dataset(
    service: Service,
    actor: User,
    host: TestHost,
    name: str,
    folder: Path,
    policy: DatasetPolicy,
    **options: Any,
) -> Dataset:
    """Register ``folder`` on ``host`` as dataset ``name`` (``c2d dataset add`` on the host)."""
    policy = policy.model_copy(update={"host": host.name})
    attested = attest_dataset(
        host.settings, host.registry, host.identity, name, folder, policy, **options
    )
    dataset = service.register_dataset(
        actor, name, policy, attested.statement, attested.signature, attested.profile
    )
    keep(host.registry, attested)
    return dataset
