"""The data host's dry run with a fake engine: mock data mounted, never the real folder; the
job stays pending; one record and one job.dryrun per job whatever the messages do."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobs.models import DatasetPolicy
from jobs.states import JobState
from runner.client.mock import mock_from_schema
from runner.errors import TryLater
from runner.host.dryrun import RECORDED, SKIPPED, dryrun_id, execute_dryrun
from runner.host.sandbox.fake import FakeExecutor, Script
from runner.host.sandbox.interface import SandboxSpec
from tests.kit.worlds import ControlWorld, build_control_world, tar_with


class Recorder:
    """Scripts for the fake engine that remember every spec it was asked to run."""

    def __init__(self) -> None:
        self.specs: list[SandboxSpec] = []
        self.script = Script(files={"model.bin": b"m"}, log=b"trained\n")

    def __call__(self, spec: SandboxSpec) -> Script:
        self.specs.append(spec)
        return self.script


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[ControlWorld, Recorder]]:
    w = build_control_world(tmp_path)
    recorder = Recorder()
    w.ctx.engine._executor = FakeExecutor(w.ctx.settings.work_dir, recorder, host=w.host)
    yield w, recorder
    w.close()


def test_a_pending_job_runs_on_mock_data_and_stays_pending(world) -> None:
    w, recorder = world
    job = w.submit()
    assert execute_dryrun(w.ctx, job.id, "host-1") == RECORDED
    assert w.service.load_job(job.id).state is JobState.PENDING
    (spec,) = recorder.specs
    assert spec.job_id == dryrun_id(job.id)
    mounted = spec.datasets["ds"]
    assert mounted.is_relative_to(w.ctx.settings.mocks_dir)
    assert mounted != Path(w.ctx.registry.get_dataset("ds").path)
    assert spec.limits.timeout_s == 120  # the job asks for 10 minutes; dry runs get 2
    dryrun = w.service.dryrun_of(job.id)
    assert dryrun is not None
    assert (dryrun.ok, dryrun.reason) == (True, "exited with code 0")
    assert dryrun.produced == ["model.bin"]
    assert dryrun.log_tail == "trained\n"
    entries = w.control.ledger.entries_for(job.id)
    assert [e.type for e in entries] == ["job.submitted", "job.dryrun"]
    assert entries[-1].body["mock_digest"] == dryrun.mock_digest
    assert not list(w.ctx.settings.dryrun_dir.iterdir())  # the extracted code is gone
    assert not w.host.containers


def test_the_mock_is_what_the_researcher_makes_from_the_schema(world, tmp_path: Path) -> None:
    w, _ = world
    olga = w.users["olga"]
    data = Path(w.ctx.registry.get_dataset("ds").path)
    (data / "rows.csv").write_text("a,b,kind\n1,2.5,x\n3,4.5,y\n5,0.5,x\n")
    policy = DatasetPolicy(owner="olga", schema="stats", public_values={"*": ["kind"]})
    w.register(olga, "ds", data, policy)
    job = w.submit()
    execute_dryrun(w.ctx, job.id, "host-1")
    doc = w.service.dataset_schema(w.users["rita"], "ds")
    mine = mock_from_schema(doc, tmp_path / "mine", rows=None, seed=0)
    dryrun = w.service.dryrun_of(job.id)
    assert dryrun is not None
    assert dryrun.mock_digest == mine.digest
    kinds = {line.split(",")[2] for line in (tmp_path / "mine/rows.csv").read_text().split()[1:]}
    assert kinds <= {"x", "y"}  # the public column's real values, nothing else


def test_a_crash_on_mock_data_is_recorded_with_its_log_and_the_job_stays_pending(world) -> None:
    w, recorder = world
    recorder.script = Script(exit_code=1, log=b"Traceback ...\nKeyError: 'glucose'\n")
    job = w.submit()
    assert execute_dryrun(w.ctx, job.id, "host-1") == RECORDED
    dryrun = w.service.dryrun_of(job.id)
    assert dryrun is not None
    assert (dryrun.ok, dryrun.reason) == (False, "exited with code 1")
    assert "KeyError: 'glucose'" in dryrun.log_tail
    assert w.service.load_job(job.id).state is JobState.PENDING
    body = w.control.ledger.entries_for(job.id)[-1].body
    assert (body["ok"], body["missing"]) == (False, 1)  # counts, never the job's own names
    assert "model.bin" not in json.dumps(body)


def test_a_second_message_runs_nothing_and_writes_nothing(world) -> None:
    w, recorder = world
    job = w.submit()
    execute_dryrun(w.ctx, job.id, "host-1")
    assert execute_dryrun(w.ctx, job.id, "host-2") == SKIPPED
    assert len(recorder.specs) == 1
    assert [e.type for e in w.control.ledger.entries_for(job.id)].count("job.dryrun") == 1


def test_a_job_that_left_pending_is_not_dry_run(world) -> None:
    w, recorder = world
    job = w.approved()
    assert execute_dryrun(w.ctx, job.id, "host-1") == SKIPPED
    assert recorder.specs == []
    assert w.service.dryrun_of(job.id) is None


def test_a_stopping_worker_hands_the_dry_run_back_and_leaves_nothing(world) -> None:
    w, recorder = world
    recorder.script = Script(runs_forever=True)
    job = w.submit()
    stop = threading.Event()
    stop.set()
    with pytest.raises(TryLater):
        execute_dryrun(w.ctx, job.id, "host-1", stop=stop, poll_s=0.01)
    assert w.service.dryrun_of(job.id) is None
    assert not w.host.containers
    assert not list(w.ctx.settings.dryrun_dir.iterdir())
    assert w.service.lease_dryrun(job.id, "host-2", 5)  # the retry may start at once, anywhere


def test_a_dry_run_another_worker_holds_is_left_to_it(world) -> None:
    w, recorder = world
    job = w.submit()
    assert w.service.lease_dryrun(job.id, "host-1", 30)
    assert execute_dryrun(w.ctx, job.id, "host-2") == SKIPPED
    assert recorder.specs == []
    assert w.service.dryrun_of(job.id) is None


def test_a_dead_workers_dry_run_is_adopted_once_its_lease_ran_out(world, caplog) -> None:
    w, recorder = world
    recorder.script = Script(files={"model.bin": b"m"}, log=b"trained\n", duration_s=60)
    job = w.submit()
    hung = threading.Event()  # the first worker stops in its wait and never renews: it is dead
    dead = FakeExecutor(
        w.ctx.settings.work_dir, recorder, host=w.host, clock=w.clock, sleep=lambda _s: hung.wait()
    )
    w.ctx.engine._executor = dead
    outcome: list[str] = []
    first = threading.Thread(
        target=lambda: outcome.append(execute_dryrun(w.ctx, job.id, "host-1", poll_s=0.01))
    )
    first.start()
    name = dryrun_id(job.id)
    for _ in range(500):
        if name in w.host.containers and w.host.containers[name].started is not None:
            break
        threading.Event().wait(0.01)
    assert w.host.created[name] == 1

    w.clock.advance(61)  # the lease (5 s) ran out; the container exited meanwhile
    w.ctx.engine._executor = FakeExecutor(
        w.ctx.settings.work_dir, recorder, host=w.host, clock=w.clock
    )
    assert execute_dryrun(w.ctx, job.id, "host-2", poll_s=0.01) == RECORDED
    assert w.host.created[name] == 1  # adopted, not started again
    dryrun = w.service.dryrun_of(job.id)
    assert dryrun is not None
    assert (dryrun.ok, dryrun.worker, dryrun.produced) == (True, "host-2", ["model.bin"])
    assert not w.host.containers

    hung.set()  # the first worker comes back: it finds its lease gone and leaves everything be
    first.join(10)
    assert outcome == [SKIPPED]
    assert "taken over by another worker" in caplog.text
    assert [e.type for e in w.control.ledger.entries_for(job.id)].count("job.dryrun") == 1


def test_a_dataset_without_a_schema_gets_a_dry_run_that_says_so(world) -> None:
    w, recorder = world
    job = w.submit()
    with w.ctx.registry._tx() as conn:  # the host lost its profile of the dataset
        conn.execute("DELETE FROM profiles")
    assert execute_dryrun(w.ctx, job.id, "host-1") == RECORDED
    dryrun = w.service.dryrun_of(job.id)
    assert dryrun is not None
    assert not dryrun.ok
    assert "has no profile on this data host" in dryrun.reason
    assert dryrun.mock_digest is None
    assert recorder.specs == []


def test_a_bundle_extraction_refuses_gets_a_failed_dry_run_not_endless_retries(world) -> None:
    """`a/b` before `a`: an earlier server's upload check let it in, extraction cannot write it.
    The dry run is recorded as not run, once, so the reconciler does not send it again."""
    w, recorder = world
    job = w.submit(bundle_data=tar_with({"a/b": b"1", "a": b"2"}))
    assert execute_dryrun(w.ctx, job.id, "host-1") == RECORDED
    dryrun = w.service.dryrun_of(job.id)
    assert dryrun is not None
    assert not dryrun.ok
    assert "'a' comes after members inside it" in dryrun.reason
    assert recorder.specs == []
    assert not list(w.ctx.settings.dryrun_dir.iterdir())
    assert execute_dryrun(w.ctx, job.id, "host-2") == SKIPPED
