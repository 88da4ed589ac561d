"""The owner's side of outputs: what waits for her, reading outputs before release, refusing."""

from __future__ import annotations

import pytest

from jobs.errors import Conflict, InvalidRequest, InvalidTransition, NotAllowed, NotFound
from jobs.queries import WITHHELD
from jobs.states import JobState
from tests.kit.worlds import ok_outcome

S = JobState


def _succeeded(w, who: str = "rita"):
    job = w.approved(who)
    claim = w.service.claim(job.id, "w1", 60)
    return w.service.finish(job.id, claim.fence, ok_outcome())


def test_the_queue_holds_pending_and_unreleased_jobs_of_governed_datasets_oldest_first(
    reviewed_world,
):
    w = reviewed_world
    done = _succeeded(w)
    w.clock.advance(5)
    pending = w.submit("rob", text="print('other')\n")
    w.clock.advance(5)
    rejected = w.submit("rita", text="print('no')\n")
    w.service.reject(w.olga, rejected.id, "no")
    assert [j.id for j in w.service.review_queue(w.olga)] == [done.id, pending.id]
    assert [j.id for j in w.service.review_queue(w.ada)] == [done.id, pending.id]
    # Another owner governs none of these; a researcher governs nothing at all.
    assert w.service.review_queue(w.otto) == []
    assert w.service.review_queue(w.rita) == []
    released = w.service.release(w.olga, done.id)
    assert released.id not in {j.id for j in w.service.review_queue(w.olga)}


def test_the_owner_reads_outputs_before_release_the_researcher_only_after(reviewed_world):
    w = reviewed_world
    job = _succeeded(w)
    assert w.service.authorize_outputs(w.olga, job.id).outcome is not None
    assert w.service.authorize_outputs(w.ada, job.id).outcome is not None
    with pytest.raises(Conflict, match="nothing is released yet"):
        w.service.authorize_outputs(w.rita, job.id)
    with pytest.raises(NotFound):
        w.service.authorize_outputs(w.rob, job.id)
    with pytest.raises(NotFound):
        w.service.authorize_outputs(w.otto, job.id)
    w.service.release(w.olga, job.id)
    assert w.service.authorize_outputs(w.rita, job.id).outcome is not None


def test_refusing_ends_the_job_and_its_researcher_reads_why_never_the_outcome(reviewed_world):
    w = reviewed_world
    job = _succeeded(w)
    with pytest.raises(NotAllowed):
        w.service.refuse(w.rita, job.id, "mine")
    with pytest.raises(NotFound):
        w.service.refuse(w.otto, job.id, "not mine")
    with pytest.raises(InvalidRequest, match="say why"):
        w.service.refuse(w.olga, job.id, "  ")
    refused = w.service.refuse(w.olga, job.id, "the model memorises rows")
    assert refused.state is S.CANCELLED
    entry = w.ledger.entries_for(job.id)[-1]
    assert (entry.type, entry.actor, entry.body) == (
        "job.refused",
        "olga",
        {"reason": "the model memorises rows"},
    )
    seen = w.service.get_job(w.rita, job.id)
    assert seen.outcome is None
    assert seen.withheld
    assert seen.reason == (
        "the owner of dataset 'iris' refused to release the outputs: the model memorises rows"
    )
    assert seen.reason != WITHHELD
    assert w.service.get_job(w.olga, job.id).outcome is not None
    # For good: neither released afterwards nor downloadable.
    with pytest.raises(InvalidTransition):
        w.service.release(w.olga, job.id)
    with pytest.raises(Conflict, match="cancelled: nothing is released"):
        w.service.authorize_download(w.rita, job.id)


def test_only_a_succeeded_job_is_refused_and_its_researcher_cannot_cancel_it(reviewed_world):
    w = reviewed_world
    pending = w.submit()
    with pytest.raises(InvalidTransition, match="from pending to cancelled"):
        w.service.refuse(w.olga, pending.id, "no")
    done = _succeeded(w, "rob")
    with pytest.raises(Conflict, match="releases them"):
        w.service.cancel(w.rob, done.id, "never mind")
    assert w.service.get_job(w.olga, done.id).state is S.SUCCEEDED
