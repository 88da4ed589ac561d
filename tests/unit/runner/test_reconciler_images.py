"""The reconciler's image clean-up pass: what it protects and which retention it applies.

The removal itself runs against a real engine in tests/integration/test_byo_cleanup.py; here
a recording stand-in for ``remove_unused_images`` shows what the reconciler hands it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import runner.host.images
import runner.host.images.policy
from runner.errors import ImageError
from runner.host.images.policy import AllowedBase
from runner.host.reconciler import Reconciler
from tests.kit.worlds import IMAGE, ControlWorld, build_control_world

BASE_ID = "sha256:" + "b" * 64
OTHER = "sha256:" + "c" * 64


@pytest.fixture
def world(tmp_path) -> Iterator[ControlWorld]:
    w = build_control_world(tmp_path, byo_retention_s=123.0)
    w.ctx.engine._docker = object()  # type: ignore[union-attr]  # never used by the stand-ins
    yield w
    w.ctx.engine._docker = None  # type: ignore[union-attr]
    w.close()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []

    def remove(client: object, in_use: set[str], older_than_s: float, now: float) -> list[str]:
        seen.append({"in_use": set(in_use), "older_than_s": older_than_s, "now": now})
        return [OTHER]

    def bases(client: object, policy: object) -> tuple[AllowedBase, ...]:
        return (AllowedBase("c2d/python-ml:latest", BASE_ID, ("sha256:" + "d" * 64,), 1),)

    monkeypatch.setattr(runner.host.images, "remove_unused_images", remove)
    monkeypatch.setattr(runner.host.images.policy, "resolve_bases", bases)
    return seen


def _cancelled_job_with(world: ControlWorld, image_id: str) -> None:
    job = world.submit()
    other = world.service.submit(
        world.users["rita"], job.spec, None, job.code_digest, job.bundle_files, image_id
    )
    world.service.cancel(world.users["rita"], other.id, "done with it")


def test_live_jobs_images_and_the_allowed_bases_are_protected_with_the_set_retention(
    world: ControlWorld, calls: list[dict[str, Any]]
) -> None:
    world.approved()
    _cancelled_job_with(world, OTHER)
    done = Reconciler(world.ctx, clock=world.clock).run_once()
    assert done.images_removed == [OTHER]
    [call] = calls
    assert call["in_use"] == {IMAGE, BASE_ID}
    assert call["older_than_s"] == 123.0


def test_without_an_allowed_base_here_only_the_jobs_images_are_protected(
    world: ControlWorld, calls: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    def none_here(client: object, policy: object) -> tuple[AllowedBase, ...]:
        raise ImageError("none of the allowed base images is on this host")

    monkeypatch.setattr(runner.host.images.policy, "resolve_bases", none_here)
    world.approved()
    Reconciler(world.ctx, clock=world.clock).run_once()
    assert calls[0]["in_use"] == {IMAGE}
