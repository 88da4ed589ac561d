"""Fixtures shared by the sandbox's integration tests (the kit itself is ``tests.kit.sandbox``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.kit.sandbox import RUNTIMES, Sandbox, make_sandbox


@pytest.fixture(params=RUNTIMES)
def sandbox(
    request: pytest.FixtureRequest,
    docker_client: docker.DockerClient,
    job_image: str,
    runsc_available: bool,
    tmp_path: Path,
) -> Iterator[Sandbox]:
    """A real sandbox under each runtime (runc, and runsc where the engine has gVisor)."""
    yield from make_sandbox(request, docker_client, job_image, runsc_available, tmp_path)
