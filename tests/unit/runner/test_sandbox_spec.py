"""A sandbox spec refuses what the sandbox never allows; reasons read as sentences."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runner.errors import SandboxSpecInvalid
from runner.host.sandbox import Limits, RunResult, SandboxSpec
from runner.host.sandbox.reasons import exit_reason, human_bytes, outcome_reason

IMAGE = "sha256:" + "ab" * 32


def spec(**changes: Any) -> SandboxSpec:
    fields: dict[str, Any] = {
        "job_id": "job-1",
        "image_id": IMAGE,
        "command": ["python3", "train.py"],
        "code_dir": Path("/srv/code"),
    }
    fields.update(changes)
    return SandboxSpec(**fields)


def test_a_plain_spec_gets_hardened_defaults() -> None:
    s = spec(datasets={"iris": "/srv/iris"}, params={"c": 1.0}, outputs=["model.skops"])
    assert (s.uid, s.gid, s.runtime) == (65534, 65534, "runc")
    assert s.command == ("python3", "train.py")
    assert s.datasets == {"iris": Path("/srv/iris")}
    assert s.params_json() == b'{\n  "c": 1.0\n}\n'
    assert s.limits.log_bytes == 1024 * 1024


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"uid": 0}, "never run as root"),
        ({"gid": 0}, "never run as root"),
        ({"image_id": "python:3.11"}, "never pulls"),
        ({"job_id": "../etc"}, "job id"),
        ({"job_id": "a" * 65}, "job id"),
        ({"command": []}, "command"),
        ({"command": ["python3", ""]}, "command"),
        ({"code_dir": Path("code")}, "absolute"),
        ({"datasets": {"../x": "/srv/x"}}, "dataset name"),
        ({"datasets": {"iris": "iris"}}, "absolute"),
        ({"outputs": ["/etc/passwd"]}, "not absolute"),
        ({"outputs": ["../model.pkl"]}, "'..'"),
        ({"params": {"x": float("nan")}}, "plain JSON"),
        ({"params": {"x": object()}}, "plain JSON"),
        ({"runtime": "kata"}, "runc or runsc"),
    ],
)
def test_what_the_sandbox_never_allows_is_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(SandboxSpecInvalid, match=message):
        spec(**changes)


@pytest.mark.parametrize(
    "changes",
    [{"cpus": 0}, {"cpus": float("inf")}, {"memory_bytes": 1024}, {"pids": 0}, {"timeout_s": 0},
     {"log_bytes": True}, {"max_output_files": 0}, {"nofile": 1.5}],
)  # fmt: skip
def test_limits_cannot_be_switched_off(changes: dict[str, Any]) -> None:
    with pytest.raises(SandboxSpecInvalid):
        Limits(**changes)


def test_sizes_read_as_people_write_them() -> None:
    assert human_bytes(512 * 1024**2) == "512 MiB"
    assert human_bytes(3 * 1024**3 // 2) == "1.5 GiB"
    assert human_bytes(1000) == "1000 bytes"


def test_reasons_a_person_can_act_on() -> None:
    common: dict[str, Any] = {"timeout_s": 600, "memory_bytes": 512 * 1024**2}
    assert outcome_reason(exit_code=3, oom=False, timed_out=False, **common) == (
        "exited with code 3"
    )
    assert outcome_reason(exit_code=137, oom=True, timed_out=False, **common) == (
        "killed: out of memory (limit 512 MiB)"
    )
    assert outcome_reason(exit_code=137, oom=False, timed_out=True, **common) == (
        "killed: timed out after 600 s"
    )
    full = outcome_reason(
        exit_code=1, oom=False, timed_out=False, outputs_full=True, outputs_bytes=1024**2, **common
    )
    assert full == (
        "/outputs was full (limit 1 MiB): the job tried to write more than its output limit, so "
        "its outputs may be cut short (exited with code 1)"
    )
    assert exit_reason(139) == "exited with code 139 (signal 11, SIGSEGV)"
    assert exit_reason(153, fsize_limit=1024**2) == (
        "exited with code 153 (signal 25, SIGXFSZ): a file grew past the file size limit of 1 MiB"
    )


def test_only_a_clean_exit_with_accepted_outputs_succeeds() -> None:
    ok = RunResult(
        exit_code=0, oom=False, timed_out=False, reason="exited with code 0", duration_s=1
    )
    assert ok.succeeded
    for bad in (
        RunResult(1, False, False, "exited with code 1", 1),
        RunResult(0, True, False, "killed", 1),
        RunResult(0, False, True, "killed", 1),
        RunResult(0, False, False, "output rejected: x", 1, rejected=True),
        RunResult(None, False, False, "lost", 1),
    ):
        assert not bad.succeeded
