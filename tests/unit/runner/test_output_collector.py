"""The collector takes only declared regular files, checked after opening, or fails the job.

These run on a plain folder (no Docker): the rules are the collector's, whatever wrote the files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
from pathlib import Path

import pytest

from runner.artifacts import ArtifactStore
from runner.errors import OutputRejected
from runner.host.sandbox.collector import OutputPolicy, collect_outputs

SECRET = b"patient_id,diagnosis\n4711,very private\n"


def policy(*patterns: str, **caps: int) -> OutputPolicy:
    return OutputPolicy(
        patterns=patterns,
        max_files=caps.get("max_files", 10),
        max_file_bytes=caps.get("max_file_bytes", 1_000_000),
        max_total_bytes=caps.get("max_total_bytes", 1_000_000),
        max_entries=caps.get("max_entries", 100),
    )


@pytest.fixture
def out(tmp_path: Path) -> Path:
    path = tmp_path / "outputs"
    path.mkdir()
    return path


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "store")


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "data" / "secret.csv"
    path.parent.mkdir()
    path.write_bytes(SECRET)
    return path


def stored_bytes(store: ArtifactStore) -> list[bytes]:
    return [p.read_bytes() for p in sorted(store.root.rglob("*")) if p.is_file()]


def test_declared_files_are_stored_with_their_sha256(out: Path, store: ArtifactStore) -> None:
    (out / "model.pkl").write_bytes(b"weights")
    (out / "metrics.json").write_text('{"accuracy": 0.9, "n": 3}')
    got = collect_outputs(out, policy("model.pkl"), store)
    names = [(o.name, o.sha256, o.bytes) for o in got.outputs]
    assert ("model.pkl", "sha256:" + hashlib.sha256(b"weights").hexdigest(), 7) in names
    assert [o.name for o in got.outputs] == ["metrics.json", "model.pkl"]
    assert got.metrics == {"accuracy": 0.9, "n": 3.0}
    with store.open(got.outputs[1].sha256) as f:
        assert f.read() == b"weights"


def test_undeclared_files_are_ignored_and_listed(out: Path, store: ArtifactStore) -> None:
    (out / "model.pkl").write_bytes(b"m")
    (out / "scratch").mkdir()
    (out / "scratch" / "cache.bin").write_bytes(b"undeclared")
    got = collect_outputs(out, policy("model.pkl"), store)
    assert got.ignored == ("scratch/cache.bin",)
    assert b"undeclared" not in stored_bytes(store)


def test_globs_stay_within_one_folder_unless_doubled(out: Path, store: ArtifactStore) -> None:
    (out / "plots").mkdir()
    (out / "plots" / "roc.png").write_bytes(b"roc")
    (out / "top.png").write_bytes(b"top")
    (out / "a" / "b").mkdir(parents=True)
    (out / "a" / "b" / "deep.csv").write_bytes(b"deep")
    got = collect_outputs(out, policy("*.png", "**/*.csv"), store)
    assert [o.name for o in got.outputs] == ["a/b/deep.csv", "top.png"]
    assert "plots/roc.png" in got.ignored


def test_metrics_are_none_when_absent_and_collecting_twice_agrees(
    out: Path, store: ArtifactStore
) -> None:
    (out / "model.pkl").write_bytes(b"m")
    first = collect_outputs(out, policy("model.pkl"), store)
    assert first.metrics is None
    assert collect_outputs(out, policy("model.pkl"), store) == first


def rejected(out: Path, store: ArtifactStore, pol: OutputPolicy) -> str:
    with pytest.raises(OutputRejected) as info:
        collect_outputs(out, pol, store)
    assert str(info.value).startswith("output rejected: ")
    return str(info.value)


def test_symlink_to_data_is_refused_and_data_never_stored(
    out: Path, store: ArtifactStore, secret: Path
) -> None:
    (out / "aaa.txt").write_bytes(b"collected before the bad one")
    (out / "model.pkl").symlink_to(secret)
    reason = rejected(out, store, policy("*.txt", "model.pkl"))
    assert reason.startswith("output rejected: model.pkl is a symlink")
    assert stored_bytes(store) == []  # not the secret, and not the good file staged before it


def test_symlinked_folder_on_the_way_is_refused(
    out: Path, store: ArtifactStore, secret: Path
) -> None:
    (out / "sub").symlink_to(secret.parent)
    reason = rejected(out, store, policy("sub/secret.csv"))
    assert "sub is a symlink" in reason
    assert stored_bytes(store) == []


def test_hard_link_is_refused(out: Path, store: ArtifactStore, secret: Path) -> None:
    os.link(secret, out / "model.pkl")  # same filesystem here; inside a job it is EXDEV
    reason = rejected(out, store, policy("model.pkl"))
    assert "model.pkl is a hard link (the file has 2 names)" in reason
    assert SECRET not in stored_bytes(store)


@pytest.mark.timeout(20)
def test_fifo_is_refused_without_blocking(out: Path, store: ArtifactStore) -> None:
    os.mkfifo(out / "model.pkl")  # no writer: a blocking open would hang forever
    assert "model.pkl is a fifo" in rejected(out, store, policy("model.pkl"))


def test_socket_is_refused(out: Path, store: ArtifactStore) -> None:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(out / "model.pkl"))
        assert "model.pkl" in rejected(out, store, policy("model.pkl"))


def test_declared_folder_is_refused_with_a_hint(out: Path, store: ArtifactStore) -> None:
    (out / "plots").mkdir()
    assert "plots is a folder; declare the files in it, like plots/*" in rejected(
        out, store, policy("plots")
    )


def test_declared_name_not_written_fails_but_an_empty_glob_does_not(
    out: Path, store: ArtifactStore
) -> None:
    assert collect_outputs(out, policy("*.png"), store).outputs == ()
    assert "model.pkl was declared but not written" in rejected(out, store, policy("model.pkl"))


def test_per_file_cap(out: Path, store: ArtifactStore) -> None:
    (out / "model.pkl").write_bytes(b"x" * 101)
    reason = rejected(out, store, policy("model.pkl", max_file_bytes=100))
    assert "model.pkl is 101 bytes, over the per-file limit of 100 bytes" in reason
    assert stored_bytes(store) == []


def test_total_cap_rejects_and_keeps_nothing(out: Path, store: ArtifactStore) -> None:
    for name in ("a.bin", "b.bin", "c.bin"):
        (out / name).write_bytes(name.encode() * 20)
    reason = rejected(out, store, policy("*.bin", max_total_bytes=150))
    assert "the outputs together exceed their limit of 150 bytes" in reason
    assert stored_bytes(store) == []


def test_file_count_cap(out: Path, store: ArtifactStore) -> None:
    for i in range(4):
        (out / f"{i}.bin").write_bytes(b"x")
    assert "more than 3 output files" in rejected(out, store, policy("*.bin", max_files=3))


def test_walk_is_bounded(out: Path, store: ArtifactStore) -> None:
    for i in range(20):
        (out / f"junk{i}").write_bytes(b"")
    assert "more than 10 files and folders" in rejected(out, store, policy("x", max_entries=10))


def test_a_blob_other_jobs_share_survives_a_rejection(out: Path, store: ArtifactStore) -> None:
    earlier, _ = store.put_bytes(b"shared")
    (out / "a.bin").write_bytes(b"shared")
    (out / "b.bin").symlink_to(out / "a.bin")
    rejected(out, store, policy("*.bin"))
    assert store.has(earlier)


BAD_METRICS: dict[str, tuple[str | bytes, str]] = {
    "nested": ('{"a": {"b": 1}}', "has an object as the value of 'a'"),
    "list value": ('{"a": [1, 2]}', "has a list as the value of 'a'"),
    "string": ('{"a": "0.9"}', "has a string as the value of 'a'"),
    "bool": ('{"a": true}', "has the boolean true as the value of 'a'"),
    "null": ('{"a": null}', "has null as the value of 'a'"),
    "NaN": ('{"a": NaN}', "holds NaN, which is not a finite number"),
    "Infinity": ('{"a": -Infinity}', "holds -Infinity, which is not a finite number"),
    "overflow": ('{"a": 1e999}', "has a value of 'a' that is not a finite number"),
    "huge int": ('{"a": ' + "9" * 400 + "}", "has a value of 'a' that is not a finite number"),
    "top-level list": ("[1, 2]", "must be a JSON object of numbers"),
    "top-level number": ("3", "must be a JSON object of numbers"),
    "not JSON": ("accuracy=0.9", "is not valid JSON"),
    "not UTF-8": (b'{"a": 1, "\xff": 2}', "is not UTF-8 text"),
    "duplicate key": ('{"a": 1, "a": 2}', "repeats the key 'a'"),
    "empty key": ('{"": 1}', "keys must be 1-64 letters, digits"),
    "long key": (json.dumps({"k" * 65: 1}), "keys must be 1-64 letters, digits"),
    # A key that is a row of the data: the attack the rule is for.
    "row as key": (json.dumps({"Jane Roe,123-45-6789": 1.0}), "not a short name"),
    "escape in key": (json.dumps({"a\u001b[2Kb": 1.0}), "not a short name"),
    "too many keys": (json.dumps({f"m{i}": i for i in range(101)}), "has 101 keys; at most 100"),
    "deep": ("[" * 100_000 + "]" * 100_000, "is nested too deeply"),
}


@pytest.mark.parametrize("case", sorted(BAD_METRICS))
def test_malformed_metrics_fail_with_a_clear_reason(
    out: Path, store: ArtifactStore, case: str
) -> None:
    text, expected = BAD_METRICS[case]
    (out / "metrics.json").write_bytes(text if isinstance(text, bytes) else text.encode())
    reason = rejected(out, store, policy())
    assert reason.startswith("output rejected: metrics.json ")
    assert expected in reason
    assert stored_bytes(store) == []


def test_metrics_at_the_key_limit_pass(out: Path, store: ArtifactStore) -> None:
    (out / "metrics.json").write_text(json.dumps({f"m.{i}-x_{i}": i / 7 for i in range(100)}))
    got = collect_outputs(out, policy(), store)
    assert got.metrics is not None
    assert len(got.metrics) == 100


def test_the_owner_may_allow_more_metrics_up_to_1000(out: Path, store: ArtifactStore) -> None:
    (out / "metrics.json").write_text(json.dumps({f"m{i}": i for i in range(1000)}))
    got = collect_outputs(out, dataclasses.replace(policy(), max_metrics=1000), store)
    assert got.metrics is not None
    assert len(got.metrics) == 1000
    (out / "metrics.json").write_text(json.dumps({f"m{i}": i for i in range(1001)}))
    with pytest.raises(OutputRejected, match="at most 1000"):
        collect_outputs(out, dataclasses.replace(policy(), max_metrics=5000), store)


def test_names_that_are_not_text_are_refused_or_shown_escaped(
    out: Path, store: ArtifactStore
) -> None:
    odd = os.fsdecode(b"model\xff.pkl")
    (out / odd).write_bytes(b"m")
    (out / "note\n.txt").write_bytes(b"n")
    got = collect_outputs(out, policy("*.bin"), store)
    assert sorted(got.ignored) == ["model\\xff.pkl", "note\\n.txt"]
    reason = rejected(out, store, policy("*.pkl"))
    assert "model\\xff.pkl has a name that is not printable UTF-8 text" in reason
