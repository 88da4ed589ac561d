"""A running job's log leaves its data host as it comes (``runner.livelog``) only where the
dataset's policy lets the researcher read logs at any time: the host decides it for each run,
from the policy the control plane holds."""

from __future__ import annotations

from pathlib import Path

from jobs.access import live_log
from jobs.models import Dataset, DatasetPolicy
from runner.host.preflight import prepare_run
from tests.kit.worlds import build_control_world


def _dataset(logs_visible: str) -> Dataset:
    policy = DatasetPolicy(owner="olga", logs_visible=logs_visible)  # type: ignore[arg-type]
    return Dataset.model_construct(name="ds", policy=policy)  # the rule reads the policy


def test_only_a_dataset_whose_researcher_reads_logs_has_live_logs() -> None:
    assert live_log(_dataset("researcher"))
    assert not live_log(_dataset("owner"))


def test_the_host_publishes_a_runs_log_only_under_that_policy(tmp_path: Path) -> None:
    world = build_control_world(tmp_path)
    try:
        open_data = tmp_path / "open"
        open_data.mkdir(mode=0o755)
        (open_data / "rows.csv").write_text("a,b\n1,2\n")
        (open_data / "rows.csv").chmod(0o644)
        policy = DatasetPolicy(owner="olga", logs_visible="researcher")
        world.register("olga", "open", open_data, policy)

        kept = world.approved()  # on "ds": the default policy keeps logs to the owner
        live = world.approved(dataset="open")

        assert prepare_run(world.ctx, kept).live_log is False
        assert prepare_run(world.ctx, live).live_log is True
    finally:
        world.close()
