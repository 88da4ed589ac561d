"""Operator commands through the console script: image build, init, and `c2d up`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.kit.installation import Installation

pytestmark = [pytest.mark.docker, pytest.mark.redis]


def test_image_build_is_a_no_op_when_the_image_is_up_to_date(
    c2d_stack: Installation, docker_client: Any, job_image: str
) -> None:
    built = c2d_stack.json("image", "build", env=c2d_stack.env)
    assert built["built"] is False
    assert built["tag"] == "c2d/python-ml:latest"
    assert built["image_id"] == docker_client.images.get(built["tag"]).id


def test_init_refuses_to_overwrite_and_up_serves_the_api(installation: Installation) -> None:
    first = installation.init()
    assert first.returncode == 0, first.stderr
    init = json.loads(first.stdout)
    assert init["home"] == str(installation.home)
    assert init["token"]
    key = (installation.home / "ledger.key").stat()
    second = installation.c2d("init", "--json", env=installation.env)
    assert second.returncode == 2, second.stderr
    assert json.loads(second.stdout)["error"]["kind"] in {"conflict", "invalid"}
    assert (installation.home / "ledger.key").stat().st_mtime_ns == key.st_mtime_ns

    installation.wait_healthy(installation.start("up", "up"))
    user = installation.json(
        "user", "add", "pat", "--role", "owner", token=installation.admin_token
    )
    assert user["role"] == "owner"
    assert user["token"]
