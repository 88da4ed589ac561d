"""Fixtures of the fault-injection suite (the kit itself is ``fault_kit``).

Every case needs the Docker engine, the job image and a ``redis-server`` binary (the suite
starts its own Redis on a free port, never touching the shared one). Without them a case
skips on a laptop and fails when ``CI`` is set, like the rest of the real-service tests.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fault_kit import FaultStack, fault_stack


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "faults: a fault-injection case (tests/faults; real processes, bounded)"
    )


@pytest.fixture(scope="session")
def redis_server_binary() -> str:
    """The path of ``redis-server`` (the suite runs its own)."""
    found = shutil.which("redis-server")
    if found is None:
        message = "redis-server is not installed; run `make services` first"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (CI is set, so this is a failure, not a skip)")
        pytest.skip(message)
    return found


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    docker_client: Any,
    job_image: str,
    redis_server_binary: str,
) -> Iterator[FaultStack]:
    """One installation (API + Redis of its own) for a module; its tests start workers."""
    root = tmp_path_factory.mktemp("faults")
    with fault_stack(root, docker_client) as made:
        made.setup_people(root / "data")
        yield made


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A folder for one case's job folders."""
    return tmp_path
