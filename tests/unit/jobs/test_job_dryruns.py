"""Recording a pre-approval dry run: the job stays where it is, one ledger entry, and a hidden
schema keeps what the job printed or named with the owner."""

from __future__ import annotations

import json

import pytest

from jobs.errors import Conflict, NotFound
from jobs.models import DatasetPolicy
from jobs.schema_records import DryRun
from jobs.states import JobState

MOCK = "sha256:" + "7" * 64
LOG = "sha256:" + "8" * 64


def _dryrun(job_id: str, **kw) -> DryRun:
    base = {
        "job_id": job_id,
        "ok": False,
        "reason": "exited with code 1",
        "exit_code": 1,
        "duration_s": 1.5,
        "declared": ["model.skops", "scores/*.csv"],
        "produced": [],
        "log_tail": "KeyError: 'secret_column_name'\n",
        "log_digest": LOG,
        "mock_digest": MOCK,
        "level": "columns",
        "max_rows": 1000,
        "worker": "host-1",
        "time": 1_700_000_100.0,
    }
    return DryRun(**{**base, **kw})


def test_a_dry_run_is_recorded_once_and_leaves_the_job_pending(world):
    job = world.submit()
    world.service.record_dryrun(_dryrun(job.id))
    with pytest.raises(Conflict):
        world.service.record_dryrun(_dryrun(job.id, ok=True, reason="exited with code 0"))
    assert world.service.load_job(job.id).state is JobState.PENDING
    assert world.types(job.id) == ["job.submitted", "job.dryrun"]
    entry = world.ledger.entries_for(job.id)[-1]
    assert entry.actor == "worker:host-1"
    assert entry.body["mock_digest"] == MOCK
    assert entry.body["ok"] is False
    assert entry.body["missing"] == 1
    assert "log_tail" not in entry.body
    assert world.service.dryrun_of(job.id).reason == "exited with code 1"


def test_a_dry_run_of_an_unknown_job_is_refused(world):
    with pytest.raises(NotFound):
        world.service.record_dryrun(_dryrun("nojob"))


def test_researchers_see_their_dry_run_when_the_schema_is_visible(world):
    job = world.submit()
    assert world.service.dryrun_for(world.rita, job.id) is None
    world.service.record_dryrun(_dryrun(job.id))
    shown = world.service.dryrun_for(world.rita, job.id)
    assert shown["log_tail"].startswith("KeyError")
    assert shown["missing"] == ["model.skops"]
    with pytest.raises(NotFound):
        world.service.dryrun_for(world.rob, job.id)  # not his job


def test_a_hidden_schema_keeps_the_result_with_the_owner(world, tmp_path):
    folder = tmp_path / "secret"
    folder.mkdir()
    (folder / "t.csv").write_text("secret_column_name\n1\n")
    world.register(world.olga, "secret", folder, DatasetPolicy(owner="olga", schema="hidden"))
    job = world.submit(dataset_name="secret")
    world.service.record_dryrun(_dryrun(job.id, withheld=True, produced=["secret_column_name.txt"]))
    body = world.ledger.entries_for(job.id)[-1].body
    assert body["withheld"] is True
    assert set(body) == {"mock_digest", "level", "seed", "max_rows", "withheld", "result_digest"}
    assert "secret_column_name" not in json.dumps(body)
    mine = world.service.dryrun_for(world.rita, job.id)
    assert mine["withheld"] is True
    assert "secret_column_name" not in json.dumps(mine)
    owners = world.service.dryrun_for(world.olga, job.id)
    assert "secret_column_name" in owners["log_tail"]
