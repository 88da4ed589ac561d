"""`c2d run`'s choices before anything starts: which /data/NAME, which jobs, which /outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.errors import SpecError
from runner.host import localrun
from runner.host.localrun import LocalRunInvalid, load_job, mounts_outputs

JOB = 'name: t\ncommand: ["python3", "t.py"]\n'


def _job(tmp_path: Path, extra: str = "") -> Path:
    folder = tmp_path / "job"
    folder.mkdir(parents=True)
    (folder / "job.yaml").write_text(JOB + extra)
    (folder / "t.py").write_text("print(1)\n")
    return folder


def test_the_dataset_name_comes_from_the_flag_then_the_mocked_dataset_then_job_yaml(tmp_path):
    folder = _job(tmp_path, "dataset: patients\nparams: {n: 1}\n")
    assert load_job(folder, None, {}, None).dataset == "patients"
    assert load_job(folder, "other", {}, "mocked").dataset == "other"
    assert load_job(folder, None, {}, "mocked").dataset == "mocked"
    assert load_job(folder, None, {"n": 2}, None).params == {"n": 2}
    bare = _job(tmp_path / "b")
    assert load_job(bare, None, {}, "mocked").dataset == "mocked"
    with pytest.raises(SpecError, match="no dataset name"):
        load_job(bare, None, {}, None)


def test_a_job_with_its_own_image_is_sent_to_the_data_host(tmp_path):
    folder = _job(tmp_path, "dataset: d\nimage: {build: Dockerfile}\n")
    (folder / "Dockerfile").write_text("FROM c2d/python-ml\n")
    with pytest.raises(LocalRunInvalid, match="submit it"):
        load_job(folder, None, {}, None)


def test_without_root_outputs_go_on_a_tmpfs_volume_instead_of_a_mount(monkeypatch):
    monkeypatch.setattr(localrun.os, "geteuid", lambda: 1000)
    assert not mounts_outputs()
    monkeypatch.setattr(localrun.os, "geteuid", lambda: 0)
    assert mounts_outputs()
