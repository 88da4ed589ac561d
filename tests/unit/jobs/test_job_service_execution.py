"""Claims, leases, fences and results: a job runs at most once at a time and finishes once."""

import json
import threading

import pytest

from jobs.digests import canonical_digest, outputs_digest
from jobs.errors import Conflict, DigestMismatch, InvalidRequest, InvalidTransition, LeaseLost
from jobs.models import OutputFile
from jobs.states import JobState
from tests.kit.worlds import IMAGE, make_service, ok_outcome

S = JobState
D = "sha256:" + "ab" * 32


def test_claim_moves_approved_to_running_with_a_lease_and_fence(world):
    job = world.approved()
    claim = world.service.claim(job.id, "host-a", 60)
    assert claim.fence == 1
    assert claim.job.state is S.RUNNING
    assert (claim.job.lease_owner, claim.job.lease_expires) == ("host-a", world.clock.now + 60)
    assert (claim.job.attempts, claim.job.started) == (1, world.clock.now)
    entry = world.ledger.entries_for(job.id)[-1]
    assert (entry.type, entry.actor) == ("job.started", "worker:host-a")
    assert entry.body == {"worker": "host-a", "fence": 1, "attempt": 1}
    assert world.service.dispatchable() == []


def test_dispatchable_lists_approved_unclaimed_jobs(world):
    pending = world.submit()
    approved = world.approved()
    assert [j.id for j in world.service.dispatchable()] == [approved.id]
    assert pending.id not in [j.id for j in world.service.dispatchable()]


def test_a_second_claim_under_a_live_lease_is_refused(world):
    job = world.approved()
    world.service.claim(job.id, "host-a", 60)
    world.clock.advance(59)
    with pytest.raises(Conflict, match="running on host-a"):
        world.service.claim(job.id, "host-b", 60)
    assert world.types(job.id).count("job.started") == 1


def test_claim_of_a_job_that_is_not_approved(world):
    job = world.submit()
    with pytest.raises(InvalidTransition, match="from pending to running"):
        world.service.claim(job.id, "host-a", 60)


@pytest.mark.parametrize(
    ("worker", "lease"), [("", 60), ("a\nb", 60), ("w", 0), ("w", -1), ("w", float("nan"))]
)
def test_claim_checks_its_arguments(world, worker, lease):
    job = world.approved()
    with pytest.raises(InvalidRequest):
        world.service.claim(job.id, worker, lease)


def test_heartbeat_extends_the_lease(world):
    job = world.approved()
    claim = world.service.claim(job.id, "host-a", 60)
    world.clock.advance(50)
    beat = world.service.heartbeat(job.id, "host-a", claim.fence, 60)
    assert beat.lease_expires == world.clock.now + 60
    world.clock.advance(50)  # 100 s after the claim, but 50 s after the heartbeat
    with pytest.raises(Conflict):
        world.service.claim(job.id, "host-b", 60)
    assert world.service.expired_leases() == []


def test_heartbeat_from_another_worker_with_the_right_fence_is_refused(world):
    job = world.approved()
    claim = world.service.claim(job.id, "host-a", 60)
    with pytest.raises(LeaseLost, match="held by host-a, not host-b"):
        world.service.heartbeat(job.id, "host-b", claim.fence, 60)


def test_an_expired_lease_is_adopted_with_a_new_fence_and_the_old_worker_stops(world):
    job = world.approved()
    old = world.service.claim(job.id, "host-a", 60)
    world.clock.advance(61)
    assert [j.id for j in world.service.expired_leases()] == [job.id]
    new = world.service.claim(job.id, "host-b", 60)
    assert new.fence == old.fence + 1
    assert (new.job.lease_owner, new.job.attempts) == ("host-b", 2)
    entry = world.ledger.entries_for(job.id)[-1]
    assert entry.type == "job.reclaimed"
    assert entry.body == {
        "worker": "host-b",
        "fence": 2,
        "attempt": 2,
        "previous_worker": "host-a",
        "previous_fence": 1,
    }
    with pytest.raises(LeaseLost, match="claimed again by host-b") as info:
        world.service.heartbeat(job.id, "host-a", old.fence, 60)
    assert info.value.cancelled is False
    with pytest.raises(LeaseLost):
        world.service.finish(job.id, old.fence, ok_outcome())
    done = world.service.finish(job.id, new.fence, ok_outcome())
    assert done.state is S.RELEASED  # the policy releases on success
    assert world.types(job.id).count("job.finished") == 1


def test_finish_records_the_outcome_and_happens_once(world):
    job = world.approved()
    claim = world.service.claim(job.id, "host-a", 60)
    world.clock.advance(5)
    outcome = ok_outcome(
        outputs=[OutputFile(name="model.skops", sha256=D, bytes=1234)],
        metrics={"accuracy": 0.93, "f1": 0.9},
        log_digest=D,
    )
    done = world.service.finish(job.id, claim.fence, outcome)
    assert done.outcome == outcome
    assert (done.reason, done.finished, done.lease_expires) == (
        "exited with code 0",
        world.clock.now,
        None,
    )
    entries = world.ledger.entries_for(job.id)
    assert [e.type for e in entries] == [
        "job.submitted",
        "job.approved",
        "job.started",
        "job.finished",
        "job.released",
    ]
    finished = entries[3]
    assert finished.actor == "worker:host-a"
    # Digests and counts only: every signed-in user reads the ledger, and the reason, exit
    # code, duration, output names and sizes are derived from the private data.
    assert finished.body == {
        "state": "succeeded",
        "worker": "host-a",
        "fence": 1,
        "ran": True,
        "outcome_digest": canonical_digest(outcome.model_dump(mode="json")),
        "outputs": 1,
        "outputs_digest": outputs_digest([{"name": "model.skops", "sha256": D, "bytes": 1234}]),
        "metrics_digest": canonical_digest({"accuracy": 0.93, "f1": 0.9}),
        "log_digest": D,
    }
    assert "model.skops" not in json.dumps(finished.body)
    # No check ran in this outcome (the data host adds them): an empty list, and its digest.
    assert entries[4].body == {
        "by_policy": True,
        "checks": [],
        "checks_digest": canonical_digest([]),
    }
    size = world.ledger.size()
    with pytest.raises(LeaseLost, match="released, no longer running"):
        world.service.finish(job.id, claim.fence, outcome)
    assert world.ledger.size() == size


def test_with_output_review_success_waits_for_the_owner(reviewed_world):
    w = reviewed_world
    job = w.approved()
    claim = w.service.claim(job.id, "host-a", 60)
    assert w.service.finish(job.id, claim.fence, ok_outcome()).state is S.SUCCEEDED
    assert "job.released" not in w.types(job.id)


def test_a_failed_run(world):
    job = world.approved()
    claim = world.service.claim(job.id, "host-a", 60)
    outcome = ok_outcome(
        succeeded=False, exit_code=None, oom=True, reason="killed: out of memory (limit 512 MiB)"
    )
    done = world.service.finish(job.id, claim.fence, outcome)
    assert (done.state, done.reason) == (S.FAILED, "killed: out of memory (limit 512 MiB)")
    body = world.ledger.entries_for(job.id)[-1].body
    assert body["state"] == "failed"
    assert body["outcome_digest"] == canonical_digest(outcome.model_dump(mode="json"))
    assert "memory" not in json.dumps(body)


def test_cancel_of_a_running_job_tells_the_worker_to_stop(world):
    job = world.approved()
    claim = world.service.claim(job.id, "host-a", 60)
    world.service.cancel(world.rita, job.id, "wrong data")
    with pytest.raises(LeaseLost, match="cancelled") as info:
        world.service.heartbeat(job.id, "host-a", claim.fence, 60)
    assert info.value.cancelled is True
    with pytest.raises(LeaseLost) as info:
        world.service.finish(job.id, claim.fence, ok_outcome())
    assert info.value.cancelled is True
    assert "job.finished" not in world.types(job.id)


def test_fail_expired_only_after_the_lease_ran_out_and_only_once(world):
    job = world.approved()
    claim = world.service.claim(job.id, "host-a", 60)
    with pytest.raises(Conflict, match="still live"):
        world.service.fail_expired(job.id, claim.fence, "worker lost")
    world.clock.advance(90)
    failed = world.service.fail_expired(job.id, claim.fence, "worker host-a stopped answering")
    assert failed.state is S.FAILED
    assert failed.outcome.duration_s == 90
    entry = world.ledger.entries_for(job.id)[-1]
    assert (entry.type, entry.actor) == ("job.finished", "reconciler")
    assert entry.body["lease_expired"] is True
    with pytest.raises(LeaseLost):
        world.service.fail_expired(job.id, claim.fence, "again")
    with pytest.raises(LeaseLost):
        world.service.finish(job.id, claim.fence, ok_outcome())
    assert world.types(job.id).count("job.finished") == 1


def test_fail_expired_with_a_stale_fence_does_not_touch_an_adopted_job(world):
    job = world.approved()
    old = world.service.claim(job.id, "host-a", 60)
    world.clock.advance(61)
    world.service.claim(job.id, "host-b", 60)
    world.clock.advance(61)
    with pytest.raises(LeaseLost):
        world.service.fail_expired(job.id, old.fence, "lost")
    assert world.store.get_job(job.id).state is S.RUNNING


@pytest.mark.parametrize("what", ["code", "image", "dataset", "params"])
def test_check_bound_names_the_digest_that_changed(world, what):
    job = world.approved()
    bound = {
        "code": job.code_digest,
        "image": IMAGE,
        "dataset": job.dataset_digest,
        "params": job.params_digest,
    }
    world.service.check_bound(job, *bound.values())
    changed = {**bound, what: "sha256:" + "9" * 64}
    with pytest.raises(DigestMismatch) as info:
        world.service.check_bound(job, *changed.values())
    err = info.value
    assert (err.what, err.expected, err.actual) == (what, bound[what], "sha256:" + "9" * 64)
    assert err.kind == "failed"
    assert f"{what} digest changed" in str(err)


def test_check_bound_lists_every_change_and_needs_an_approval(world):
    job = world.approved()
    with pytest.raises(DigestMismatch) as info:
        world.service.check_bound(job, D, "other-image", job.dataset_digest, D)
    assert [m[0] for m in info.value.mismatches] == ["code", "image", "params"]
    with pytest.raises(Conflict, match="never approved"):
        world.service.check_bound(world.submit(), D, IMAGE, D, D)


def test_a_changed_dataset_is_caught_before_a_run(world):
    job = world.approved()
    (world.tmp / "iris" / "iris.csv").write_text("poisoned\n")
    current = world.current_digest("iris")
    with pytest.raises(DigestMismatch, match="dataset digest changed"):
        world.service.check_bound(job, job.code_digest, IMAGE, current, job.params_digest)


def test_concurrent_claims_from_separate_connections_give_exactly_one_winner(world):
    job = world.approved()
    services = [make_service(world.tmp, world.clock)[0] for _ in range(6)]
    results: list[object] = []
    barrier = threading.Barrier(len(services))

    def claim(service, n):
        barrier.wait()
        try:
            results.append(service.claim(job.id, f"host-{n}", 60))
        except Conflict as exc:
            results.append(exc)

    threads = [threading.Thread(target=claim, args=(s, n)) for n, s in enumerate(services)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wins = [r for r in results if not isinstance(r, Exception)]
    assert len(wins) == 1
    assert len(results) == len(services)
    assert world.types(job.id).count("job.started") == 1
    for s in services:
        s.store.close()
        s.ledger.close()
