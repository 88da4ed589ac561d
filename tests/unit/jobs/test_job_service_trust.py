"""Trust is scoped: one researcher, one params digest (or any), never the owner's own jobs.

Code digests are public in the ledger, so a trust that matched on the code alone would let
anyone who submits the same code skip review. Each test checks what stays pending, and that a
refusal writes nothing.
"""

import pytest

from jobs.digests import canonical_digest
from jobs.errors import Conflict, NotAllowed
from jobs.models import DatasetPolicy, TrustedCode
from jobs.states import JobState

S = JobState


def trusted_entries(world):
    return [e for e in world.ledger.entries_for("dataset:iris") if e.type == "dataset.trusted"]


def only_submitted(world, job) -> None:
    assert job.state is S.PENDING
    assert job.approval is None
    assert world.types(job.id) == ["job.submitted"]


def test_trust_for_rita_approves_her_same_code_and_params_by_policy(world):
    first = world.submit("rita")
    trusted = world.service.trust(world.olga, first.id)
    assert (trusted.researcher, trusted.params_digest) == ("rita", first.params_digest)
    assert not trusted.any_params
    again = world.submit("rita")
    assert again.state is S.APPROVED
    assert (again.approval.by_policy, again.approval.approver) == (True, "olga")


def test_the_same_code_from_another_researcher_stays_pending(world):
    first = world.submit("rita")
    world.service.trust(world.olga, first.id, any_params=True)
    other = world.submit("rob")
    assert other.code_digest == first.code_digest
    only_submitted(world, other)


def test_the_owner_who_trusted_the_code_does_not_get_her_own_job_approved(world):
    first = world.submit("rita")
    world.service.trust(world.olga, first.id, any_params=True)
    own = world.submit("olga")
    assert own.code_digest == first.code_digest
    only_submitted(world, own)


def test_other_params_stay_pending_unless_trusted_for_any_params(world):
    first = world.submit("rita")
    world.service.trust(world.olga, first.id)
    other = world.submit("rita", params={"lr": 0.5})
    assert other.params_digest == canonical_digest({"lr": 0.5}) != first.params_digest
    only_submitted(world, other)

    world.service.trust(world.olga, first.id, any_params=True)
    assert trusted_entries(world)[-1].body["params_digest"] == "any"
    any_params = world.submit("rita", params={"lr": 0.9})
    assert any_params.state is S.APPROVED
    assert any_params.approval.by_policy is True


def test_an_admins_own_job_is_approved_only_by_someone_elses_trust(world):
    """Admins submit like researchers: the owner's trust in the admin's job counts, the
    admin's own never (and she cannot set it)."""
    first = world.submit("ada")
    with pytest.raises(NotAllowed, match="your own job"):
        world.service.trust(world.ada, first.id)
    world.service.trust(world.olga, first.id)
    again = world.submit("ada")
    assert again.state is S.APPROVED
    assert again.approval.approver == "olga"


def test_a_trust_row_naming_its_own_setter_or_the_owner_approves_nothing(world):
    """Rows that the service never writes now (but an older database might hold) are inert."""
    spec, digest, _ = world.code()
    params = canonical_digest(spec.params)
    with world.store.transaction():
        for researcher, by in (("rob", "rob"), ("olga", "ada")):
            world.store.add_trust(
                TrustedCode(
                    dataset="iris",
                    code_digest=digest,
                    researcher=researcher,
                    params_digest=params,
                    trusted_by=by,
                    job_id="job-old",
                    time=1.0,
                )
            )
    only_submitted(world, world.submit("rob"))
    only_submitted(world, world.submit("olga"))


def test_the_owners_own_job_cannot_be_trusted_even_by_an_admin(world):
    own = world.submit("olga")
    size = world.ledger.size()
    with pytest.raises(NotAllowed, match="owner's own"):
        world.service.trust(world.ada, own.id)
    assert world.ledger.size() == size


def test_a_trust_set_by_someone_who_no_longer_governs_the_dataset_approves_nothing(world):
    first = world.submit("rita")
    world.service.trust(world.olga, first.id)
    # An admin hands the dataset to otto: olga's trust no longer speaks for it.
    world.register(world.ada, "iris", world.tmp / "iris", DatasetPolicy(owner="otto"))
    only_submitted(world, world.submit("rita"))


def test_trusting_what_is_already_covered_is_a_conflict_and_writes_nothing(world):
    first = world.submit("rita")
    world.service.trust(world.olga, first.id)
    size = world.ledger.size()
    with pytest.raises(Conflict, match="already trusted"):
        world.service.trust(world.ada, first.id)
    assert world.ledger.size() == size
    # Widening to any params is a new trust; narrowing it again is covered already.
    world.service.trust(world.olga, first.id, any_params=True)
    with pytest.raises(Conflict, match="already trusted"):
        world.service.trust(world.olga, first.id)


def test_the_ledger_entry_says_for_whom_and_with_which_params(world):
    first = world.submit("rita")
    world.service.trust(world.olga, first.id)
    world.service.trust(world.olga, first.id, any_params=True)
    narrow, wide = trusted_entries(world)
    assert narrow.body == {
        "code_digest": first.code_digest,
        "job_id": first.id,
        "researcher": "rita",
        "params_digest": first.params_digest,
    }
    assert wide.body["params_digest"] == "any"
    assert (narrow.actor, narrow.subject) == ("olga", "dataset:iris")
