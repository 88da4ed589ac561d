"""Data hosts: added by an admin, enrolled once with their own key, then scoped to their jobs."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from jobs.errors import Conflict, InvalidRequest, NotAllowed, NotFound, Unauthenticated
from ledger.keys import raw_public_key
from ledger.statements import fingerprint, sign_statement
from tests.kit.worlds import build_world


def public(key: Ed25519PrivateKey) -> str:
    return base64.b64encode(raw_public_key(key)).decode()


def test_an_admin_adds_a_host_that_enrolls_once_with_its_key(tmp_path):
    w = build_world(tmp_path)
    host, token = w.service.add_host(w.ada, "h1")
    assert token.startswith("c2de_")
    assert host.public_key is None
    key = Ed25519PrivateKey.generate()
    enrolled, credential = w.service.enroll_host(token, public(key))
    assert credential.startswith("c2dh_")
    assert enrolled.fingerprint == fingerprint(raw_public_key(key))
    assert w.service.authenticate_host(credential).name == "h1"
    with pytest.raises(Unauthenticated):  # the enrollment token is spent
        w.service.enroll_host(token, public(Ed25519PrivateKey.generate()))
    entries = [e for e in w.ledger.entries() if e.subject == "host:h1"]
    assert [e.type for e in entries] == ["host.added", "host.enrolled"]
    assert entries[1].body["public_key"] == public(key)
    assert entries[1].actor == "host:h1"


def test_only_admins_add_hosts_and_names_are_unique(tmp_path):
    w = build_world(tmp_path)
    with pytest.raises(NotAllowed):
        w.service.add_host(w.olga, "h1")
    w.service.add_host(w.ada, "h1")
    with pytest.raises(Conflict):
        w.service.add_host(w.ada, "h1")
    with pytest.raises(NotFound):
        w.service.add_host(w.ada, "nope", renew=True)


def test_renewal_revokes_the_old_key_and_credential(tmp_path):
    w = build_world(tmp_path)
    _, token = w.service.add_host(w.ada, "h1")
    _, old = w.service.enroll_host(token, public(Ed25519PrivateKey.generate()))
    _, again = w.service.add_host(w.ada, "h1", renew=True)
    with pytest.raises(Unauthenticated):
        w.service.authenticate_host(old)
    _, new = w.service.enroll_host(again, public(Ed25519PrivateKey.generate()))
    assert w.service.authenticate_host(new).name == "h1"


def test_people_and_hosts_do_not_share_credentials(tmp_path):
    w = build_world(tmp_path)
    with pytest.raises(Unauthenticated):
        w.service.authenticate_host(w.tokens["olga"])
    _, token = w.service.add_host(w.ada, "h1")
    _, credential = w.service.enroll_host(token, public(Ed25519PrivateKey.generate()))
    with pytest.raises(Unauthenticated):
        w.service.authenticate(credential)


def test_a_key_must_be_32_bytes(tmp_path):
    w = build_world(tmp_path)
    _, token = w.service.add_host(w.ada, "h1")
    with pytest.raises(InvalidRequest):
        w.service.enroll_host(token, base64.b64encode(b"short").decode())


def test_a_host_sees_only_its_own_jobs_and_signatures_are_checked(tmp_path):
    w = build_world(tmp_path)  # the dataset iris runs on data host "default"
    job = w.submit()
    key = w.host.identity.key
    mine = w.service.get_host("default")
    assert w.service.host_job(mine, job.id).id == job.id
    _, other_token = w.service.add_host(w.ada, "elsewhere")
    other, _ = w.service.enroll_host(other_token, public(Ed25519PrivateKey.generate()))
    with pytest.raises(NotFound):
        w.service.host_job(other, job.id)
    statement = {"type": "c2d.test/1", "job": job.id}
    w.service.check_host_signature(mine, statement, sign_statement(key, statement))
    with pytest.raises(NotAllowed, match="not data host elsewhere"):
        w.service.check_host_signature(other, statement, sign_statement(key, statement))
    with pytest.raises(NotAllowed):  # a signature over another statement
        w.service.check_host_signature(
            mine, {**statement, "job": "x"}, sign_statement(key, statement)
        )


def attested_iris(w, policy=None):  # type: ignore[no-untyped-def]
    from jobs.models import DatasetPolicy
    from runner.host.datasets import attest_dataset

    policy = policy or DatasetPolicy(owner="olga", host="default")
    assert w.host is not None
    return attest_dataset(
        w.host.settings, w.host.registry, w.host.identity, "iris2", w.tmp / "iris", policy
    )


def test_a_dataset_is_recorded_only_as_its_host_signed_it(tmp_path):
    from jobs.models import DatasetPolicy

    w = build_world(tmp_path)
    attested = attested_iris(w)
    policy = DatasetPolicy(owner="olga", host="default")
    entries = len(w.ledger.entries_for("dataset:iris2"))

    def register(statement, signature, profile=attested.profile, pol=policy, name="iris2"):  # type: ignore[no-untyped-def]
        return w.service.register_dataset(w.olga, name, pol, statement, signature, profile)

    # Facts only the host knows, changed on the way: its signature no longer holds.
    for changed in ({"digest": "sha256:" + "0" * 64}, {"bytes": 1}, {"files": 99}):
        with pytest.raises(NotAllowed, match="not data host default's"):
            register({**attested.statement, **changed}, attested.signature)
    # What the registration says (owner, host, name, profile) must be what the host signed.
    for changed in ({"owner": "otto"}, {"host": "elsewhere"}):
        with pytest.raises(InvalidRequest, match="does not match"):
            register({**attested.statement, **changed}, attested.signature)
    with pytest.raises(InvalidRequest, match="does not match"):  # registered under another name
        register(attested.statement, attested.signature, name="iris3")
    forged = attested.profile.model_copy(update={"problem": "made up on the way"})
    with pytest.raises(InvalidRequest, match="does not match"):  # a profile it did not sign
        register(attested.statement, attested.signature, profile=forged)
    forger = Ed25519PrivateKey.generate()
    with pytest.raises(NotAllowed):
        register(attested.statement, sign_statement(forger, attested.statement))
    assert w.store.get_dataset("iris2") is None
    assert len(w.ledger.entries_for("dataset:iris2")) == entries

    register(attested.statement, attested.signature)
    assert len(w.ledger.entries_for("dataset:iris2")) == entries + 1


def test_a_dataset_on_a_host_not_enrolled_yet_is_refused(tmp_path):
    from jobs.models import DatasetPolicy

    w = build_world(tmp_path)
    w.service.add_host(w.ada, "later")
    attested = attested_iris(w)
    with pytest.raises(NotFound, match="no enrolled data host 'later'"):
        w.service.register_dataset(
            w.olga,
            "iris2",
            DatasetPolicy(owner="olga", host="later"),
            {**attested.statement, "host": "later"},
            attested.signature,
            attested.profile,
        )


def test_a_finish_needs_the_hosts_signature_over_that_outcome(tmp_path):
    from jobs.attestations import outcome_statement
    from jobs.states import JobState
    from tests.kit.worlds import ok_outcome

    w = build_world(tmp_path)
    job = w.approved()
    claim = w.service.claim(job.id, "default@vm:1", 30)
    outcome = ok_outcome()
    key = w.host.identity.key  # type: ignore[union-attr]
    me = w.service.get_host("default")
    statement = outcome_statement("default", job.id, claim.fence, outcome)
    before = w.types(job.id)
    for signature in (
        sign_statement(Ed25519PrivateKey.generate(), statement),
        sign_statement(key, {**statement, "fence": claim.fence + 1}),
        sign_statement(
            key,
            outcome_statement(
                "default", job.id, claim.fence, ok_outcome(metrics={"accuracy": 1.0})
            ),
        ),
    ):
        with pytest.raises(NotAllowed):
            w.service.finish(job.id, claim.fence, outcome, host=me, signature=signature)
    assert w.types(job.id) == before
    assert w.service.load_job(job.id).state is JobState.RUNNING
    done = w.service.finish(
        job.id, claim.fence, outcome, host=me, signature=sign_statement(key, statement)
    )
    assert done.outcome == outcome
    assert w.types(job.id).count("job.finished") == 1


def test_a_host_uploads_only_what_its_signed_outcome_names_and_outputs_after_release(tmp_path):
    from jobs.attestations import outcome_statement
    from jobs.models import OutputFile
    from tests.kit.worlds import ok_outcome

    w = build_world(tmp_path, review_outputs=True)
    job = w.approved()
    me = w.service.get_host("default")
    model, log = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    with pytest.raises(NotAllowed, match="no outcome yet"):
        w.service.upload_allowed(me, job.id, "log", log)
    claim = w.service.claim(job.id, "default@vm:1", 30)
    outcome = ok_outcome(
        outputs=[OutputFile(name="model.skops", sha256=model, bytes=123)], log_digest=log
    )
    statement = outcome_statement("default", job.id, claim.fence, outcome)
    w.service.finish(
        job.id,
        claim.fence,
        outcome,
        host=me,
        signature=sign_statement(w.host.identity.key, statement),  # type: ignore[union-attr]
    )
    with pytest.raises(NotAllowed, match="outputs leave on release"):
        w.service.upload_allowed(me, job.id, "output", model)
    assert w.service.upload_allowed(me, job.id, "review", model) == 123
    assert w.service.upload_allowed(me, job.id, "log", log) > 0
    with pytest.raises(NotAllowed):
        w.service.upload_allowed(me, job.id, "log", model)
    w.service.release(w.olga, job.id)
    assert w.service.upload_allowed(me, job.id, "output", model) == 123
    with pytest.raises(NotAllowed, match="is not an output"):
        w.service.upload_allowed(me, job.id, "output", "sha256:" + "c" * 64)
    _, token = w.service.add_host(w.ada, "elsewhere")
    other, _ = w.service.enroll_host(token, public(Ed25519PrivateKey.generate()))
    with pytest.raises(NotFound):
        w.service.upload_allowed(other, job.id, "output", model)


def test_a_host_counts_as_seen_only_once_its_agent_says_hello_and_renewal_forgets_it(tmp_path):
    w = build_world(tmp_path)
    _, token = w.service.add_host(w.ada, "fresh")
    host, _ = w.service.enroll_host(token, public(Ed25519PrivateKey.generate()))
    assert host.last_seen is None  # enrolled, its agent not started yet
    offered = {"python-ml": {"image_id": "sha256:" + "2" * 64, "pins": {}}}
    seen = w.service.host_seen(host, offered, "c2d-agent/1")
    assert seen.last_seen is not None
    assert w.service.offered_image("fresh", "python-ml") == "sha256:" + "2" * 64
    _, again = w.service.add_host(w.ada, "fresh", renew=True)
    renewed, _ = w.service.enroll_host(again, public(Ed25519PrivateKey.generate()))
    assert (renewed.last_seen, renewed.environments) == (None, {})
    with pytest.raises(Conflict, match="has not reported in yet"):
        w.service.offered_image("fresh", "python-ml")
