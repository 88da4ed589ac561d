"""The fake executor keeps the executor contract, so the layers above can trust their tests."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from runner.artifacts import ArtifactStore
from runner.errors import SandboxError
from runner.host.sandbox import Limits, SandboxSpec, State
from runner.host.sandbox.fake import FakeExecutor, FakeHost, Script

IMAGE = "sha256:" + "cd" * 32


class Clock:
    """Time that passes only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "store")


@pytest.fixture
def code(tmp_path: Path) -> Path:
    path = tmp_path / "code"
    path.mkdir()
    return path


def make_spec(code: Path, job_id: str = "j1", **changes: Any) -> SandboxSpec:
    fields: dict[str, Any] = {
        "job_id": job_id,
        "image_id": IMAGE,
        "command": ["python3", "train.py"],
        "code_dir": code,
        "outputs": ("model.pkl",),
    }
    return SandboxSpec(**{**fields, **changes})


def executor(tmp_path: Path, clock: Clock, scripts: dict[str, Script], **kw: Any) -> FakeExecutor:
    return FakeExecutor(tmp_path / "work", scripts, clock=clock, sleep=clock.sleep, **kw)


def test_a_good_job_lands_its_outputs_in_the_store(
    tmp_path: Path, clock: Clock, store: ArtifactStore, code: Path
) -> None:
    script = Script(
        files={"model.pkl": b"weights", "metrics.json": b'{"acc": 0.8}'},
        log=b"training\n",
        duration_s=12,
    )
    result = executor(tmp_path, clock, {"j1": script}).run(make_spec(code), store)
    assert result.succeeded, result.reason
    assert result.reason == "exited with code 0"
    assert result.duration_s == 12
    assert result.metrics == {"acc": 0.8}
    assert ("model.pkl", "sha256:" + hashlib.sha256(b"weights").hexdigest(), 7) in result.outputs
    assert result.log == b"training\n"
    assert not (tmp_path / "work" / "j1").exists()


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        (Script(exit_code=3), "exited with code 3"),
        (Script(oom=True), "killed: out of memory (limit 1 GiB)"),
        (Script(runs_forever=True), "killed: timed out after 600 s"),
        (Script(duration_s=601), "killed: timed out after 600 s"),
    ],
)
def test_failures_read_as_sentences(
    tmp_path: Path, clock: Clock, store: ArtifactStore, code: Path, script: Script, reason: str
) -> None:
    result = executor(tmp_path, clock, {"j1": script}).run(make_spec(code), store)
    assert not result.succeeded
    assert result.reason == reason


def test_a_bad_output_fails_the_job_and_stores_nothing(
    tmp_path: Path, clock: Clock, store: ArtifactStore, code: Path
) -> None:
    def symlink_model(outputs: Path) -> None:
        (outputs / "model.pkl").symlink_to("/etc/passwd")

    result = executor(tmp_path, clock, {"j1": Script(make=symlink_model)}).run(
        make_spec(code), store
    )
    assert result.rejected
    assert not result.succeeded
    assert result.reason.startswith("output rejected: model.pkl is a symlink")
    assert [p for p in store.root.rglob("*") if p.is_file()] == []


def test_long_log_is_capped_and_marked(
    tmp_path: Path, clock: Clock, store: ArtifactStore, code: Path
) -> None:
    script = Script(files={"model.pkl": b"m"}, log=b"x" * 5000)
    spec = make_spec(code, limits=Limits(log_bytes=1024))
    result = executor(tmp_path, clock, {"j1": script}).run(spec, store)
    assert result.log_truncated
    assert b"[c2d: log truncated: 3976 bytes dropped here" in result.log


def test_steps_are_idempotent_and_a_restarted_worker_adopts(
    tmp_path: Path, clock: Clock, store: ArtifactStore, code: Path
) -> None:
    host = FakeHost()
    spec = make_spec(code, params={"C": 0.5})
    script = Script(files={"model.pkl": b"m"}, duration_s=30)
    first = executor(tmp_path, clock, {"j1": script}, host=host)
    assert first.status("j1") is State.ABSENT
    assert first.prepare(spec) is State.PREPARED
    assert first.prepare(spec) is State.PREPARED
    assert json.loads((tmp_path / "work" / "j1" / "job" / "params.json").read_text()) == {"C": 0.5}
    assert first.start(spec) is State.RUNNING
    assert first.wait("j1", timeout=5) is State.RUNNING

    second = executor(tmp_path, clock, {"j1": script}, host=host)  # the worker restarted
    assert second.prepare(spec) is State.RUNNING
    assert second.start(spec) is State.RUNNING
    assert host.created == {"j1": 1}
    assert second.wait("j1") is State.EXITED
    assert second.collect(spec, store) == second.collect(spec, store)
    second.cleanup("j1")
    second.cleanup("j1")
    assert second.status("j1") is State.ABSENT


def test_contract_errors(tmp_path: Path, clock: Clock, store: ArtifactStore, code: Path) -> None:
    fake = executor(tmp_path, clock, {"j1": Script(runs_forever=True)}, images={IMAGE})
    spec = make_spec(code)
    with pytest.raises(SandboxError, match="not prepared"):
        fake.start(spec)
    fake.prepare(spec)
    fake.start(spec)
    with pytest.raises(SandboxError, match="has not exited"):
        fake.collect(spec, store)
    with pytest.raises(SandboxError, match="never pulls"):
        fake.prepare(make_spec(code, job_id="j2", image_id="sha256:" + "00" * 32))
    with pytest.raises(SandboxError, match="code folder"):
        fake.prepare(make_spec(tmp_path / "nowhere", job_id="j3"))
    fake.cleanup("j1")
    assert sorted(os.listdir(tmp_path / "work")) == []
