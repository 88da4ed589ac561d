"""The worker pipeline (runner.host.pipeline.execute_job) against a real store and a fake engine."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from jobs.output_checks import OutputChecks
from jobs.states import JobState
from runner.errors import TryLater
from runner.host.pipeline import Ending, execute_job
from runner.host.sandbox.fake import Script
from tests.kit.worlds import ControlWorld, build_control_world, tar_with

W1, W2 = "local@test:1", "local@test:2"


@pytest.fixture
def world(tmp_path) -> Iterator[ControlWorld]:
    w = build_control_world(tmp_path)
    yield w
    report = w.control.ledger.verify()
    assert report.ok, report.detail
    w.close()


def types(w: ControlWorld, job_id: str) -> list[str]:
    return [e.type for e in w.control.ledger.entries_for(job_id)]


def test_a_job_runs_finishes_once_and_leaves_nothing_on_the_host(world):
    job = world.approved(Script(files={"model.bin": b"weights", "metrics.json": b'{"acc": 0.5}'}))

    assert execute_job(world.ctx, job.id, W1, poll_s=0.05) is Ending.FINISHED

    done = world.service.load_job(job.id)
    assert done.state is JobState.RELEASED  # the policy releases on success
    assert done.outcome is not None
    assert done.outcome.metrics == {"acc": 0.5}
    assert {o.name for o in done.outcome.outputs} == {"model.bin", "metrics.json"}
    assert world.ctx.artifacts.has(done.outcome.log_digest or "")
    assert types(world, job.id) == [
        "job.submitted", "job.approved", "job.started", "job.finished", "job.released",
    ]  # fmt: skip
    assert world.host.created == {job.id: 1}
    assert job.id not in world.host.containers
    assert not (world.ctx.settings.work_dir / job.id).exists()
    assert not (world.ctx.settings.code_dir / job.id).exists()


def test_a_bundle_extraction_refuses_fails_the_job_before_it_starts(world):
    """`a/b` before `a` (let in by an earlier upload check) ends as a failed job, not as an
    exception that leaves it running until the reconciler sends it again, forever."""
    job = world.approved(bundle_data=tar_with({"a/b": b"1", "a": b"2"}))
    assert execute_job(world.ctx, job.id, W1, poll_s=0.05) is Ending.FINISHED
    done = world.service.load_job(job.id)
    assert done.state is JobState.FAILED
    assert "'a' comes after members inside it" in (done.reason or "")
    assert world.host.created == {}
    assert not (world.ctx.settings.code_dir / job.id).exists()
    assert not [p for p in world.ctx.settings.code_dir.iterdir() if p.name.startswith(".")]


def test_a_second_delivery_of_a_finished_job_does_nothing(world):
    job = world.approved()
    assert execute_job(world.ctx, job.id, W1, poll_s=0.05) is Ending.FINISHED
    assert execute_job(world.ctx, job.id, W2, poll_s=0.05) is Ending.SKIPPED
    assert types(world, job.id).count("job.finished") == 1
    assert world.host.created == {job.id: 1}


def test_a_delivery_while_another_worker_holds_the_lease_does_nothing(world):
    job = world.approved()
    world.service.claim(job.id, W1, 60)
    assert execute_job(world.ctx, job.id, W2, poll_s=0.05) is Ending.SKIPPED
    assert world.service.load_job(job.id).lease_owner == W1
    assert world.host.created == {}


def test_changed_code_in_the_store_is_refused_before_any_container(world):
    job = world.approved()
    # The host's copy of the bundle (fetched from the control plane once) changed on its disk.
    blob = world.ctx.control.fetch_bundle(job, job.code_digest, world.ctx.artifacts)
    blob.chmod(0o644)
    blob.write_bytes(blob.read_bytes() + b"\0" * 512)

    assert execute_job(world.ctx, job.id, W1, poll_s=0.05) is Ending.FINISHED

    failed = world.service.load_job(job.id)
    assert failed.state is JobState.FAILED
    assert "code digest changed" in (failed.reason or "")
    assert world.host.created == {}
    assert not (world.ctx.settings.code_dir / job.id).exists()


def test_a_changed_dataset_file_is_refused_before_any_container(world):
    job = world.approved()
    (world.tmp / "data" / "rows.csv").write_text("a,b\n1,3\n")

    execute_job(world.ctx, job.id, W1, poll_s=0.05)

    failed = world.service.load_job(job.id)
    assert failed.state is JobState.FAILED
    assert "dataset digest changed" in (failed.reason or "")
    assert world.host.created == {}


def test_a_missing_image_fails_the_job_with_the_sandbox_reason(world):
    job = world.approved()
    world.ctx.engine._executor = world.executor(images=set())

    execute_job(world.ctx, job.id, W1, poll_s=0.05)

    failed = world.service.load_job(job.id)
    assert failed.state is JobState.FAILED
    assert "never pulls" in (failed.reason or "")


def test_cancelling_a_running_job_stops_its_container_without_a_finish(world):
    job = world.approved(Script(runs_forever=True))
    ended: list[Ending] = []
    runner = threading.Thread(
        target=lambda: ended.append(execute_job(world.ctx, job.id, W1, poll_s=0.05))
    )
    runner.start()
    deadline = time.monotonic() + 10
    while job.id not in world.host.containers and time.monotonic() < deadline:
        time.sleep(0.02)
    world.service.cancel(world.users["rita"], job.id, "wrong params")
    runner.join(10)

    assert ended == [Ending.CANCELLED]
    assert job.id not in world.host.containers
    assert "job.finished" not in types(world, job.id)
    assert world.service.load_job(job.id).state is JobState.CANCELLED


def test_a_stopping_worker_hands_the_job_back_and_the_next_one_adopts_it(tmp_path):
    world = build_control_world(tmp_path, lease_s=0.5, heartbeat_s=0.1)
    try:
        job = world.approved(Script(duration_s=1.0, files={"model.bin": b"m"}))
        stop = threading.Event()
        stop.set()
        with pytest.raises(TryLater):
            execute_job(world.ctx, job.id, W1, stop=stop, poll_s=0.05)
        assert world.service.load_job(job.id).state is JobState.RUNNING
        assert job.id in world.host.containers  # left running for the next worker

        # Another worker process: a new executor on the same engine, after the lease ran out.
        world.ctx.engine._executor = world.executor()
        time.sleep(0.6)
        assert execute_job(world.ctx, job.id, W2, poll_s=0.05) is Ending.FINISHED

        assert world.host.created == {job.id: 1}
        entries = types(world, job.id)
        assert entries.count("job.started") == 1
        assert entries.count("job.reclaimed") == 1
        assert entries.count("job.finished") == 1
        assert world.service.load_job(job.id).state is JobState.RELEASED
    finally:
        world.close()


def test_a_job_of_another_data_host_is_not_claimed_there(world):
    job = world.approved()
    other = world.other_host("elsewhere")
    try:
        assert execute_job(other, job.id, "elsewhere@test:1", poll_s=0.05) is Ending.SKIPPED
        assert world.service.load_job(job.id).state is JobState.APPROVED
    finally:
        other.close()


def test_an_unknown_job_id_is_skipped(world):
    assert execute_job(world.ctx, "0123456789ab", W1) is Ending.SKIPPED


def test_a_moved_environment_tag_refuses_a_fresh_start(world):
    job = world.approved()
    world.ctx.engine._resolver = lambda _name: "sha256:" + "cd" * 32  # the environment was rebuilt

    execute_job(world.ctx, job.id, W1, poll_s=0.05)

    failed = world.service.load_job(job.id)
    assert failed.state is JobState.FAILED
    assert "image digest changed" in (failed.reason or "")
    assert world.host.created == {}


def test_a_moved_environment_tag_does_not_stop_an_adopted_run(tmp_path):
    world = build_control_world(tmp_path, lease_s=0.5, heartbeat_s=0.1)
    try:
        job = world.approved(Script(duration_s=1.0, files={"model.bin": b"m"}))
        stop = threading.Event()
        stop.set()
        with pytest.raises(TryLater):
            execute_job(world.ctx, job.id, W1, stop=stop, poll_s=0.05)
        world.ctx.engine._resolver = lambda _name: "sha256:" + "cd" * 32  # rebuilt while it ran
        world.ctx.engine._executor = world.executor()
        time.sleep(0.6)

        assert execute_job(world.ctx, job.id, W2, poll_s=0.05) is Ending.FINISHED
        assert world.service.load_job(job.id).state is JobState.RELEASED
    finally:
        world.close()


def test_a_dataset_outside_the_roots_the_worker_has_does_not_run(tmp_path):
    """The administrator narrowed C2D_DATASET_ROOTS after the dataset was registered: the job
    fails before any container exists, with a reason that names no host path."""
    w = build_control_world(tmp_path)
    try:
        job = w.approved()
        narrowed = w.ctx.settings.model_copy(update={"dataset_roots": str(tmp_path / "other")})
        w.ctx.settings = narrowed  # as a restarted host agent has
        assert execute_job(w.ctx, job.id, W1, poll_s=0.05) is Ending.FINISHED
        failed = w.service.load_job(job.id)
        assert failed.state is JobState.FAILED
        assert "no longer inside this host's dataset roots" in (failed.reason or "")
        assert str(tmp_path) not in (failed.reason or "")
        assert w.host.created == {}
    finally:
        w.close()


def test_the_host_runs_the_datasets_output_checks_and_a_failed_one_holds_the_job(world):
    olga = world.users["olga"]
    world.service.set_checks(olga, "ds", OutputChecks(file_types=[".skops"], max_file_bytes=50))
    script = Script(files={"model.bin": b"w" * 100, "metrics.json": b'{"n_test": 3, "acc": 1}'})
    job = world.approved(script)

    assert execute_job(world.ctx, job.id, W1, poll_s=0.05) is Ending.FINISHED

    done = world.service.load_job(job.id)
    # The dataset releases on success, but not past a failed check: the owner decides.
    assert done.state is JobState.SUCCEEDED
    assert done.outcome is not None
    verdicts = {c.check: c for c in done.outcome.checks}
    assert [c for c, r in verdicts.items() if not r.passed] == [
        "file_types",
        "file_size",
        "min_cell",
    ]
    assert verdicts["file_size"].detail == "larger than 50 bytes: model.bin (100 bytes)"
    assert verdicts["min_cell"].detail == "counts below the minimum of 10: n_test = 3"
    assert "job.released" not in types(world, job.id)
