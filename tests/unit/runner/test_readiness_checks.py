"""``/v1/ready``'s checks on a real state folder: each names what failed and what to do.

Redis is a port where nothing listens (the live Redis going away and coming back is
``tests/integration/test_metrics_and_ready.py``); the data host ``local`` says hello through
the same service call its agent's hello reaches.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.keys import load_or_create_signing_key
from runner.control.readiness import Readiness
from tests.kit.worlds import ControlWorld, build_control_world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ControlWorld]:
    made = build_control_world(tmp_path)
    yield made
    made.close()


@pytest.fixture
def readiness(world: ControlWorld) -> Iterator[Readiness]:
    checks = Readiness(world.control, clock=world.clock)
    yield checks
    checks.close()


def verdicts(readiness: Readiness, **kw: bool) -> dict[str, tuple[bool, str]]:
    return {c.name: (c.ok, c.detail) for c in readiness.checks(**kw)}


def test_each_check_is_named_and_a_silent_redis_is_not_ready(readiness: Readiness) -> None:
    found = verdicts(readiness, hosts=False)
    assert list(found) == ["database", "ledger_key", "redis"]
    assert found["database"][0]
    assert found["ledger_key"][0]
    ok, detail = found["redis"]
    assert not ok
    assert "C2D_REDIS_URL" in detail
    assert "redis://" not in detail  # the URL may hold a password


def test_an_enrolled_host_needs_a_fresh_hello_with_its_engine_answering(
    world: ControlWorld, readiness: Readiness
) -> None:
    host = world.service.get_host("local")
    assert "c2d host start" in verdicts(readiness)["host:local"][1]
    world.service.host_seen(host, {}, "agent", False)
    ok, detail = verdicts(readiness)["host:local"]
    assert not ok
    assert "engine did not answer" in detail
    world.service.host_seen(host, {}, "agent", True)
    assert verdicts(readiness)["host:local"][0]
    world.clock.advance(world.control.settings.host_stale_s + 5)
    ok, detail = verdicts(readiness)["host:local"]
    assert not ok
    assert "C2D_HOST_STALE_S" in detail


def test_a_host_not_enrolled_yet_is_not_checked(world: ControlWorld, readiness: Readiness) -> None:
    admin = world.control.store.get_user("admin")
    assert admin is not None
    world.service.add_host(admin, "later")
    assert "host:later" not in verdicts(readiness)


def test_a_replaced_or_exposed_ledger_key_is_not_ready(
    world: ControlWorld, readiness: Readiness
) -> None:
    key = world.control.settings.key_path
    key.chmod(0o644)
    ok, detail = verdicts(readiness, hosts=False)["ledger_key"]
    assert not ok
    assert "chmod 600" in detail
    key.chmod(0o600)
    original = key.read_bytes()
    other = Path(str(key) + ".other")
    load_or_create_signing_key(other)
    key.write_bytes(other.read_bytes())
    ok, detail = verdicts(readiness, hosts=False)["ledger_key"]
    assert not ok
    assert "not the key this ledger signs with" in detail
    key.write_bytes(original)
    assert verdicts(readiness, hosts=False)["ledger_key"][0]
