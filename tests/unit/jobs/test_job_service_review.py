"""Submit, approve, reject, trust, release and cancel: who may, what is recorded."""

import re

import pytest

from jobs.digests import canonical_digest
from jobs.errors import (
    Conflict,
    InvalidRequest,
    InvalidTransition,
    LimitExceeded,
    NotAllowed,
    NotFound,
    SpecError,
    TooLarge,
)
from jobs.service import Limits
from jobs.states import JobState
from tests.kit.worlds import IMAGE, ok_outcome

S = JobState


def test_submit_records_a_pending_job_with_every_digest(world):
    spec, digest, files = world.code()
    job = world.service.submit(world.rita, spec, None, digest, files, IMAGE, None)
    dataset = world.service.get_dataset(world.rita, "iris")
    assert job.state is S.PENDING
    assert (job.researcher, job.dataset, job.code_digest, job.image_id) == (
        "rita",
        "iris",
        digest,
        IMAGE,
    )
    assert job.dataset_digest == dataset.digest
    assert job.params_digest == canonical_digest({"lr": 0.1})
    assert job.bundle_files == ["job.yaml", "train.py"]
    [entry] = world.ledger.entries_for(job.id)
    assert (entry.type, entry.actor, entry.subject) == ("job.submitted", "rita", job.id)
    assert entry.body["code_digest"] == digest
    assert entry.body["image_id"] == IMAGE
    assert entry.body["dataset_digest"] == dataset.digest
    assert entry.body["params_digest"] == job.params_digest
    assert entry.body["resources"] == {
        "cpus": 1.0,
        "memory": 512 * 1024**2,
        "timeout": 600,
        "outputs": 100 * 1024**2,
    }
    assert entry.body["outputs"] == ["model.skops", "metrics.json"]


def test_params_and_dataset_overrides(world):
    (world.tmp / "iris2").mkdir()
    (world.tmp / "iris2" / "x.csv").write_text("1\n")
    from jobs.models import DatasetPolicy

    world.register(world.olga, "iris2", world.tmp / "iris2", DatasetPolicy(owner="olga"))
    job = world.submit(dataset_name="iris2", params={"lr": 0.5, "seed": 3})
    assert job.dataset == "iris2"
    assert job.spec.dataset == "iris2"
    assert job.spec.params == {"lr": 0.5, "seed": 3}
    assert job.params_digest == canonical_digest({"seed": 3, "lr": 0.5})


def test_submit_without_a_dataset_names_the_field(world):
    spec, digest, files = world.code()
    spec = spec.model_copy(update={"dataset": None})
    with pytest.raises(SpecError, match="--dataset") as info:
        world.service.submit(world.rita, spec, None, digest, files, IMAGE)
    assert info.value.field == "dataset"


def test_submit_to_an_unknown_dataset(world):
    with pytest.raises(NotFound, match="c2d dataset list"):
        world.submit(dataset_name="nope")


@pytest.mark.parametrize("digest", ["", "sha256:abc", "md5:" + "0" * 64])
def test_submit_refuses_a_malformed_code_digest(world, digest):
    spec, _, files = world.code()
    with pytest.raises(InvalidRequest, match="code digest"):
        world.service.submit(world.rita, spec, None, digest, files, IMAGE)


def test_resources_above_the_dataset_cap_are_refused_naming_field_request_and_cap(world):
    spec, digest, files = world.code()
    big = spec.model_copy(
        update={"resources": spec.resources.model_copy(update={"memory": 4 * 1024**3})}
    )
    with pytest.raises(LimitExceeded) as info:
        world.service.submit(world.rita, big, None, digest, files, IMAGE)
    message = str(info.value)
    assert "resources.memory" in message
    assert "4GiB requested" in message
    assert "at most 2GiB" in message
    assert "dataset 'iris'" in message
    assert world.store.list_jobs() == []


def test_resources_above_the_host_limit_are_refused(new_world):
    w = new_world(limits=Limits(max_timeout=300))
    with pytest.raises(
        LimitExceeded,
        match=r"resources\.timeout: 10m requested.*this c2d host"
        r" allows at most 5m",
    ):
        w.submit()


def test_params_too_large(new_world):
    w = new_world(limits=Limits(max_params_bytes=100))
    with pytest.raises(TooLarge, match="params"):
        w.submit(params={"blob": "x" * 200})


def test_owner_approves_binding_the_four_digests(world):
    job = world.submit()
    approved = world.service.approve(world.olga, job.id, "looks fine")
    assert approved.state is S.APPROVED
    a = approved.approval
    assert (a.approver, a.note, a.by_policy) == ("olga", "looks fine", False)
    assert (a.code_digest, a.image_id, a.dataset_digest, a.params_digest) == (
        job.code_digest,
        job.image_id,
        job.dataset_digest,
        job.params_digest,
    )
    entry = world.ledger.entries_for(job.id)[-1]
    assert (entry.type, entry.actor) == ("job.approved", "olga")
    assert entry.body == {
        "approver": "olga",
        "note": "looks fine",
        "by_policy": False,
        "code_digest": job.code_digest,
        "image_id": IMAGE,
        "dataset_digest": job.dataset_digest,
        "params_digest": job.params_digest,
    }


def test_admin_approves_too(world):
    job = world.submit()
    assert world.service.approve(world.ada, job.id).approval.approver == "ada"


@pytest.mark.parametrize(
    ("submitter", "approver", "error"),
    [
        ("rita", "rita", NotAllowed),  # a researcher approving their own job
        ("rita", "rob", NotFound),  # another researcher cannot even see it
        ("rita", "otto", NotFound),  # an owner of another dataset cannot see it
        ("olga", "olga", NotAllowed),  # the owner submitting to their own dataset
        ("ada", "ada", NotAllowed),  # nor an admin their own job
    ],
)
def test_who_may_not_approve(world, submitter, approver, error):
    job = world.submit(submitter)
    size = world.ledger.size()
    with pytest.raises(error):
        world.service.approve(world.users[approver], job.id)
    assert world.store.get_job(job.id).state is S.PENDING
    assert world.ledger.size() == size


def test_approving_twice_is_a_conflict_and_adds_nothing(world):
    job = world.approved()
    with pytest.raises(InvalidTransition, match="from approved to approved"):
        world.service.approve(world.olga, job.id)
    assert world.types(job.id) == ["job.submitted", "job.approved"]


def test_reject_needs_a_reason_and_ends_the_job(world):
    job = world.submit()
    with pytest.raises(InvalidRequest, match="--reason"):
        world.service.reject(world.olga, job.id, "  ")
    with pytest.raises(NotAllowed):
        world.service.reject(world.rita, job.id, "meh")
    rejected = world.service.reject(world.olga, job.id, "reads raw rows")
    assert (rejected.state, rejected.reason) == (S.REJECTED, "reads raw rows")
    assert world.ledger.entries_for(job.id)[-1].body == {"reason": "reads raw rows"}
    with pytest.raises(InvalidTransition):
        world.service.approve(world.olga, job.id)


def test_trusted_code_is_approved_by_policy_in_the_same_step(world):
    first = world.approved()
    trusted = world.service.trust(world.olga, first.id)
    assert (trusted.code_digest, trusted.trusted_by) == (first.code_digest, "olga")
    entry = world.ledger.entries_for("dataset:iris")[-1]
    assert (entry.type, entry.body) == (
        "dataset.trusted",
        {
            "code_digest": first.code_digest,
            "job_id": first.id,
            "researcher": "rita",
            "params_digest": first.params_digest,
        },
    )

    again = world.submit()
    assert again.state is S.APPROVED
    assert again.approval.by_policy is True
    assert again.approval.approver == "olga"
    entries = world.ledger.entries_for(again.id)
    assert [e.type for e in entries] == ["job.submitted", "job.approved"]
    assert entries[1].body["by_policy"] is True
    assert entries[1].actor == "rita"

    other = world.submit(text="print('different')\n")
    assert other.state is S.PENDING


def test_trust_rules(world):
    job = world.submit()
    with pytest.raises(NotAllowed):
        world.service.trust(world.rita, job.id)
    own = world.submit("olga")
    with pytest.raises(NotAllowed, match="your own job"):
        world.service.trust(world.olga, own.id)
    world.service.trust(world.olga, job.id)
    size = world.ledger.size()
    with pytest.raises(Conflict, match="already trusted"):
        world.service.trust(world.ada, job.id)
    assert world.ledger.size() == size


def test_release_is_for_the_owner_after_success(reviewed_world):
    w = reviewed_world
    job = w.approved()
    claim = w.service.claim(job.id, "w1", 60)
    done = w.service.finish(job.id, claim.fence, ok_outcome())
    assert done.state is S.SUCCEEDED
    with pytest.raises(NotAllowed):
        w.service.release(w.rita, job.id)
    with pytest.raises(NotFound):
        w.service.release(w.otto, job.id)
    released = w.service.release(w.olga, job.id)
    assert released.state is S.RELEASED
    entry = w.ledger.entries_for(job.id)[-1]
    assert (entry.type, entry.actor) == ("job.released", "olga")
    assert entry.body == {
        "by_policy": False,
        "checks": [],
        "checks_digest": canonical_digest([]),
        "despite_checks": False,
    }
    with pytest.raises(InvalidTransition):
        w.service.release(w.olga, job.id)


def test_a_failed_job_is_never_released(reviewed_world):
    w = reviewed_world
    job = w.approved()
    claim = w.service.claim(job.id, "w1", 60)
    w.service.finish(
        job.id, claim.fence, ok_outcome(succeeded=False, exit_code=3, reason="exited with code 3")
    )
    with pytest.raises(InvalidTransition, match="from failed to released"):
        w.service.release(w.olga, job.id)


@pytest.mark.parametrize("who", ["rita", "olga", "ada"])
def test_cancel_by_researcher_owner_or_admin(world, who):
    job = world.submit()
    cancelled = world.service.cancel(world.users[who], job.id, "wrong params")
    assert cancelled.state is S.CANCELLED
    assert cancelled.reason == f"cancelled by {who}: wrong params"
    entry = world.ledger.entries_for(job.id)[-1]
    assert (entry.type, entry.actor, entry.body) == (
        "job.cancelled",
        who,
        {"from": "pending", "reason": "wrong params"},
    )


def test_cancel_by_others_is_not_found_and_finished_jobs_cannot_be_cancelled(world):
    job = world.submit()
    with pytest.raises(NotFound):
        world.service.cancel(world.rob, job.id)
    world.service.reject(world.olga, job.id, "no")
    with pytest.raises(InvalidTransition, match="from rejected to cancelled"):
        world.service.cancel(world.rita, job.id)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("x" * 2001, "at most 2000 characters"),
        ("ok\x1b[2J\x1b[31mapproved by the board", "U+001B"),
        ("fine\rreally", "U+000D"),
        ("nul\x00", "U+0000"),
        ("reads \u202etxt.exe", "U+202E"),  # a bidi override
        ("zero\u200bwidth", "U+200B"),  # draws nothing
    ],
)
def test_notes_and_reasons_are_short_plain_text(world, text, why):
    job = world.submit()
    size = world.ledger.size()
    why = re.escape(why)
    with pytest.raises(InvalidRequest, match=f"note .*{why}"):
        world.service.approve(world.olga, job.id, text)
    with pytest.raises(InvalidRequest, match=f"reason .*{why}"):
        world.service.reject(world.olga, job.id, text)
    with pytest.raises(InvalidRequest, match=f"reason .*{why}"):
        world.service.cancel(world.rita, job.id, text)
    assert world.ledger.size() == size
    assert world.store.get_job(job.id).state is S.PENDING


def test_a_note_of_2000_characters_with_newlines_and_tabs_is_fine(world):
    note = ("line\twith a tab\n" * 200)[:2000]
    approved = world.service.approve(world.olga, world.submit().id, note)
    assert approved.approval.note == note
    reason = "é" * 2000  # characters, not bytes
    assert world.service.cancel(world.rita, world.submit().id, reason).state is S.CANCELLED
