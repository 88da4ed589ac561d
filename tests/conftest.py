"""Fixtures for real services.

A test that needs Docker or Redis skips on a laptop without them, but fails when `CI` is set:
CI must never go green by skipping the parts that matter.
"""

from __future__ import annotations

import os
import uuid

import pytest

IN_CI = bool(os.environ.get("CI"))
TEST_LABEL = "c2d.test"


def missing(what: str, how: str) -> None:
    """Skip (laptop) or fail (CI) because service `what` does not answer."""
    message = f"{what} does not answer; run `{how}` first"
    if IN_CI:
        pytest.fail(f"{message} (CI is set, so this is a failure, not a skip)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def docker_client():  # type: ignore[no-untyped-def]
    """A Docker SDK client of a real engine."""
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except Exception:
        missing("the Docker engine", "make services")
    yield client
    # Remove whatever a test session left behind, by label.
    for c in client.containers.list(all=True, filters={"label": TEST_LABEL}):
        c.remove(force=True)
    client.close()


@pytest.fixture(scope="session")
def job_image(docker_client) -> str:  # type: ignore[no-untyped-def]
    """The image ID of the default job environment (built by `make image`)."""
    from runner.host.images.environments import resolve

    try:
        return resolve(docker_client, "python-ml")
    except Exception:
        missing("the c2d/python-ml image", "make image")
        raise


@pytest.fixture(scope="session")
def runsc_available(docker_client) -> bool:  # type: ignore[no-untyped-def]
    """Whether the engine has gVisor's runsc registered."""
    return "runsc" in (docker_client.info().get("Runtimes") or {})


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of a real Redis (C2D_TEST_REDIS_URL, default the local one `make services` starts)."""
    import redis

    url = os.environ.get("C2D_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except Exception:
        missing("Redis", "make services")
    return url


@pytest.fixture
def test_labels() -> dict[str, str]:
    """Labels for every container a test creates, so the session can clean them up."""
    return {TEST_LABEL: uuid.uuid4().hex}
