"""The control plane reconciler's decisions, with a real store and a recording sender; and what
the data host does with a job sent back to it (a fake engine)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from jobs.states import JobState
from runner.control.reconciler import MAX_ATTEMPTS, Reconciler
from runner.host.pipeline import Ending, execute_job
from runner.host.preflight import prepare_run
from runner.host.sandbox.fake import Script
from runner.transport import TASK_DRYRUN, TASK_RUN
from tests.kit.worlds import ControlWorld, build_control_world


@dataclass
class Sender:
    """Records sends; ``queue`` is what the broker holds; ``marks`` plays Redis SET NX."""

    queue: set[str] = field(default_factory=set)
    sent: list[str] = field(default_factory=list)
    dryruns: list[str] = field(default_factory=list)
    marks: set[str] = field(default_factory=set)

    def send(
        self,
        job_id: str,
        host: str,
        ttl: float = 0.0,
        *,
        task: str = TASK_RUN,
        args: tuple[str, ...] = (),
    ) -> bool:
        key = ("dryrun-" if task == TASK_DRYRUN else "") + job_id
        if ttl and key in self.marks:
            return False
        self.marks.add(key)
        (self.dryruns if task == TASK_DRYRUN else self.sent).append(job_id)
        self.queue.add(key)
        return True

    def queued(self, host: str) -> set[str]:
        return set(self.queue)


@pytest.fixture
def world(tmp_path) -> Iterator[ControlWorld]:
    w = build_control_world(tmp_path, lease_s=5.0, redispatch_s=10.0)
    yield w
    w.close()


def reconciler(world: ControlWorld, sender: Sender) -> Reconciler:
    return Reconciler(world.control, sender, clock=world.clock)


def test_an_approved_job_off_the_queue_is_sent_again_after_the_grace_period(world):
    job = world.approved()
    sender = Sender()

    world.clock.advance(5)
    assert reconciler(world, sender).run_once().sent == []
    world.clock.advance(6)
    assert reconciler(world, sender).run_once().sent == [job.id]
    # Still unclaimed, but now on the queue: not sent a second time.
    world.clock.advance(20)
    assert reconciler(world, sender).run_once().sent == []
    assert sender.sent == [job.id]


def test_two_reconcilers_send_a_lost_job_once(world):
    job = world.approved()
    world.clock.advance(11)
    sender = Sender()
    first = reconciler(world, sender)
    second = reconciler(world, sender)
    sender.queue.clear()  # both look before either sends
    first.run_once()
    sender.queue.clear()
    second.run_once()
    assert sender.sent == [job.id]


def test_an_expired_lease_with_a_container_is_sent_for_adoption(world):
    job = world.approved(Script(runs_forever=True))
    claim = world.service.claim(job.id, "local@gone:1", 5)
    spec_job = claim.job
    spec = prepare_run(world.ctx, spec_job)
    world.ctx.executor().prepare(spec)
    world.ctx.executor().start(spec)
    sender = Sender()
    world.clock.advance(6)

    result = reconciler(world, sender).run_once()

    assert result.adopted == [job.id]
    assert result.failed == []
    assert world.service.load_job(job.id).state is JobState.RUNNING


def test_a_job_sent_back_without_its_container_fails_once_on_its_host(world):
    job = world.approved()
    world.service.claim(job.id, "local@gone:1", 5)  # the worker died before it started anything
    world.clock.advance(6)
    sender = Sender()
    assert reconciler(world, sender).run_once().adopted == [job.id]

    assert execute_job(world.ctx, job.id, "local@test:2") is Ending.FINISHED

    failed = world.service.load_job(job.id)
    assert failed.state is JobState.FAILED
    assert "container is gone" in (failed.reason or "")
    finished = [e for e in world.control.ledger.entries_for(job.id) if e.type == "job.finished"]
    assert len(finished) == 1
    assert finished[0].body["host"] == "local"  # the host said so, signed
    # Claimed again, it is not running: the next pass leaves it alone.
    assert reconciler(world, sender).run_once() == reconciler(world, Sender()).run_once()


def test_a_job_whose_workers_keep_dying_is_given_up(world):
    job = world.approved(Script(runs_forever=True))
    claim = None
    for attempt in range(MAX_ATTEMPTS):
        world.clock.advance(6)  # the previous worker's lease ran out
        claim = world.service.claim(job.id, f"local@test:{attempt}", 5)
    assert claim is not None
    spec = prepare_run(world.ctx, claim.job)
    world.ctx.executor().prepare(spec)
    world.ctx.executor().start(spec)

    world.clock.advance(6)
    result = reconciler(world, Sender()).run_once()

    assert result.failed == [job.id]
    assert "gave up after 5 attempts" in (world.service.load_job(job.id).reason or "")


def test_a_job_whose_host_stays_silent_fails_after_host_lost_s(world):
    job = world.approved()
    world.service.claim(job.id, "local@test:1", 5)
    world.clock.advance(6)
    assert reconciler(world, Sender()).run_once().adopted == [job.id]
    world.clock.advance(world.control.settings.host_lost_s)
    result = reconciler(world, Sender()).run_once()
    assert result.failed == [job.id]
    assert "has not renewed" in (world.service.load_job(job.id).reason or "")


def test_a_dry_run_no_worker_took_is_sent_again_once_after_the_grace_period(world):
    job = world.submit()
    sender = Sender()

    world.clock.advance(5)
    assert reconciler(world, sender).run_once().dryruns_sent == []
    world.clock.advance(6)
    assert reconciler(world, sender).run_once().dryruns_sent == [job.id]
    # Its message is on the queue now: not sent a second time, and no run is sent.
    world.clock.advance(20)
    assert reconciler(world, sender).run_once().dryruns_sent == []
    assert (sender.dryruns, sender.sent) == ([job.id], [])


def test_a_dry_run_is_sent_again_only_when_its_workers_lease_ran_out(world):
    job = world.submit()
    world.clock.advance(11)
    assert world.service.lease_dryrun(job.id, "w@test:1", 5)
    sender = Sender()
    assert reconciler(world, sender).run_once().dryruns_sent == []  # a live worker has it
    world.clock.advance(6)  # the worker stopped renewing
    assert reconciler(world, sender).run_once().dryruns_sent == [job.id]


def test_a_job_with_its_dry_run_kept_or_no_longer_pending_gets_none_again(world):
    waiting = world.submit()
    approved = world.approved()
    world.clock.advance(11)
    sender = Sender()
    assert reconciler(world, sender).run_once().dryruns_sent == [waiting.id]
    assert approved.id not in sender.dryruns


def test_with_dry_runs_off_none_is_sent_again(tmp_path):
    world = build_control_world(tmp_path, dryrun=False)
    try:
        world.submit()
        world.clock.advance(60)
        assert reconciler(world, Sender()).run_once().dryruns_sent == []
    finally:
        world.close()
