"""The stored models: frozen, strict about extra fields, and checking their own invariants."""

import pydantic
import pytest

from jobs.models import Caps, DatasetPolicy, Outcome, OutputFile, Role, User

D = "sha256:" + "ab" * 32


def outcome(**kw):
    base = {"succeeded": True, "exit_code": 0, "reason": "exited with code 0", "duration_s": 1.5}
    return Outcome(**{**base, **kw})


def test_policy_defaults_and_schema_alias():
    policy = DatasetPolicy(owner="olga")
    # Outputs wait for the owner unless she registers with --release-on-success.
    assert policy.review_outputs is True
    assert policy.checks.min_cell == 10
    assert policy.logs_visible == "owner"
    assert policy.schema_view == "columns"
    assert policy.host == "default"
    assert policy.caps == Caps()
    dumped = policy.model_dump()
    assert dumped["schema"] == "columns"
    assert "schema_view" not in dumped
    assert DatasetPolicy.model_validate_json(policy.model_dump_json()) == policy
    assert DatasetPolicy(owner="o", schema="stats").schema_view == "stats"


def test_policy_caps_take_human_units():
    caps = Caps(memory="2GiB", timeout="1h", outputs="1GB", cpus=2)
    assert (caps.memory, caps.timeout, caps.outputs, caps.cpus) == (2 * 1024**3, 3600, 10**9, 2)


@pytest.mark.parametrize(
    "bad",
    [{"logs_visible": "everyone"}, {"schema": "all"}, {"surprise": 1}, {"host": "a/b"}],
)
def test_policy_refuses_unknown_values(bad):
    with pytest.raises(pydantic.ValidationError):
        DatasetPolicy(owner="olga", **bad)


def test_models_are_frozen():
    user = User(name="rita", role=Role.RESEARCHER, created=0)
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        user.role = Role.ADMIN  # type: ignore[misc]


def test_outcome_round_trips():
    out = outcome(
        outputs=[OutputFile(name="model.skops", sha256=D, bytes=10)],
        metrics={"accuracy": 0.93},
        log_digest=D,
    )
    assert Outcome.model_validate_json(out.model_dump_json()) == out


@pytest.mark.parametrize(
    "bad",
    [
        {"exit_code": 3},
        {"oom": True},
        {"timed_out": True},
        {"metrics": {"acc": float("nan")}},
        {"metrics": {"acc": float("inf")}},
        {"metrics": {f"m{i}": 1.0 for i in range(1001)}},
        {"metrics": {"acc": "high"}},
        {"outputs": [{"name": "a", "sha256": D, "bytes": 1}] * 2},
        {"outputs": [{"name": "../a", "sha256": D, "bytes": 1}]},
        {"outputs": [{"name": "a", "sha256": "md5:00", "bytes": 1}]},
        {"reason": ""},
        {"duration_s": -1},
    ],
)
def test_outcome_refuses_inconsistent_values(bad):
    with pytest.raises(pydantic.ValidationError):
        outcome(**bad)


def test_a_failed_outcome_may_have_any_exit_code():
    out = outcome(succeeded=False, exit_code=None, oom=True, reason="killed: out of memory")
    assert not out.succeeded
