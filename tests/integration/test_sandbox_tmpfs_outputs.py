"""`c2d run` without root: /outputs on a capped tmpfs volume the engine mounts, and the same
collector rules as the data host's: accepted outputs leave, a link is refused, the cap holds,
and nothing of the run (job container, holder, volume) is left behind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from runner.host.sandbox.tmpfs_outputs import TmpfsOutputsExecutor, volume_name
from tests.kit.sandbox import MiB, Sandbox

pytestmark = pytest.mark.docker


@pytest.fixture
def box(docker_client: docker.DockerClient, job_image: str, tmp_path: Path) -> Iterator[Sandbox]:
    made = Sandbox(docker_client, job_image, tmp_path, "runc")
    made.executor = TmpfsOutputsExecutor(docker_client, tmp_path / "work")
    try:
        yield made
    finally:
        made.close()


def left_behind(box: Sandbox, job_id: str) -> list[str]:
    volumes = [v.name for v in box.client.volumes.list() if v.name == volume_name(job_id)]
    return box.containers_of(job_id) + volumes


def test_declared_outputs_and_metrics_leave_through_the_tmpfs(box: Sandbox) -> None:
    result = box.run(
        "import json, os\n"
        "st = os.statvfs('/outputs')\n"
        "print('size', st.f_blocks * st.f_frsize, flush=True)\n"
        "open('/outputs/model.bin', 'wb').write(b'weights')\n"
        "json.dump({'rows': 2}, open('/outputs/metrics.json', 'w'))\n",
        outputs=["model.bin"],
    )
    assert result.succeeded, result.log
    assert sorted(o.name for o in result.outputs) == ["metrics.json", "model.bin"]
    assert result.metrics == {"rows": 2.0}
    assert b"size 4194304" in result.log  # the job's output limit, exactly
    assert left_behind(box, box.jobs[-1]) == []


def test_a_link_to_the_data_is_refused_and_never_followed(box: Sandbox) -> None:
    result = box.run(
        "import os\nos.symlink('/data/ds/secret.csv', '/outputs/model.bin')\n",
        outputs=["model.bin"],
    )
    assert not result.succeeded
    assert "model.bin" in result.reason
    assert not box.store_holds(b"c2d-secret-row")


def test_writing_past_the_cap_fails_the_run(box: Sandbox) -> None:
    result = box.run(
        "try:\n"
        "    with open('/outputs/big.bin', 'wb') as f:\n"
        f"        f.write(b'x' * {8 * MiB})\n"
        "except OSError as e:\n"
        "    print('refused', e.errno, flush=True)\n",
        outputs=["big.bin"],
    )
    assert not result.succeeded
    assert b"refused 28" in result.log  # ENOSPC: the tmpfs is the limit's size
    assert not any(p.stat().st_size > 4 * MiB for p in box.stored_files())
