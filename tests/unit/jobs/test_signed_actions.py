"""People's signed actions through the service: built alike on both sides, checked, recorded,
and every way a signature can be wrong refused with nothing changed."""

from __future__ import annotations

import secrets

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from jobs.digests import canonical_digest
from jobs.errors import Conflict, InvalidRequest, NotAllowed
from jobs.signed_actions import (
    SignaturePolicy,
    SignedEnvelope,
    decision_statement,
    envelope_of,
    release_statement,
    submit_statement,
    trust_statement,
)
from jobs.states import JobState
from jobs.user_keys import (
    UserKeyStatement,
    key_fingerprint,
    public_key_text,
    sign_statement,
    verify_statement,
)
from runner.control.api.views import job_view
from tests.kit.worlds import IMAGE, ok_outcome

S = JobState


def _key(world, who):
    """A key registered for ``who``, as `c2d login` registers it."""
    key = Ed25519PrivateKey.generate()
    public = public_key_text(key)
    statement = UserKeyStatement(user=who, origin=world.ledger.origin, public_key=public)
    world.service.register_key(world.users[who], public, sign_statement(key, statement)[0])
    return key


def _envelope(key, statement) -> SignedEnvelope:
    document = statement.model_dump(mode="json") if hasattr(statement, "model_dump") else statement
    signature, fingerprint = sign_statement(key, document)
    return SignedEnvelope(statement=document, signature=signature, key=fingerprint)


def _approval(world, key, job, who="olga", note="ok", **change):
    statement = decision_statement(world.ledger.origin, who, job_view(job), "approve", note)
    return _envelope(key, {**statement.model_dump(mode="json"), **change})


def _signed_submit(world, key, fresh=None, who="rita", **change):
    spec, digest, files = world.code()
    statement = submit_statement(
        world.ledger.origin,
        who,
        fresh or secrets.token_hex(16),
        dataset="iris",
        bundle=digest,
        image=spec.environment,
        params=canonical_digest(spec.params),
    )
    envelope = _envelope(key, {**statement.model_dump(mode="json"), **change})
    job = world.service.submit(
        world.users[who], spec, None, digest, files, IMAGE, None, signed=envelope
    )
    return job, envelope


def test_client_and_server_build_the_same_statement_from_what_each_holds(world):
    job = world.submit()
    from_view = decision_statement("o", "olga", job_view(job), "approve", "fine")
    from_job = decision_statement(
        "o", "olga", {"id": job.id, **job.model_dump()}, "approve", "fine"
    )
    assert from_view == from_job
    assert from_view.model_dump(mode="json")["code_digest"] == job.code_digest
    trusted = trust_statement("o", "olga", job_view(job), any_params=True)
    assert trusted.params_digest is None
    outputs = [{"name": "b", "sha256": "sha256:2"}, {"name": "a", "sha256": "sha256:1"}]
    released = release_statement("o", "olga", job.id, outputs)
    assert [o.name for o in released.outputs] == ["a", "b"]
    assert released.model_dump(mode="json")["outputs"][0] == {"name": "a", "digest": "sha256:1"}


def test_a_signed_submit_approve_and_release_go_into_the_entries_and_verify(reviewed_world):
    w = reviewed_world
    rita, olga = _key(w, "rita"), _key(w, "olga")
    job, _ = _signed_submit(w, rita)
    w.service.approve(w.olga, job.id, "ok", _approval(w, olga, job))
    claim = w.service.claim(job.id, "w1", 60)
    outputs = [{"name": "model.skops", "sha256": "sha256:" + "a" * 64, "bytes": 3}]
    done = w.service.finish(job.id, claim.fence, ok_outcome(outputs=outputs))
    release = release_statement(w.ledger.origin, "olga", job.id, outputs)
    w.service.release(w.olga, done.id, signed=_envelope(olga, release))
    entries = {e.type: e for e in w.ledger.entries_for(job.id)}
    keys = {
        e.body["fingerprint"]: e.body["public_key"]
        for who in ("rita", "olga")
        for e in w.ledger.entries_for(f"user:{who}")
        if e.type == "user.key"
    }
    for kind, who in [
        ("job.submitted", "rita"),
        ("job.approved", "olga"),
        ("job.released", "olga"),
    ]:
        signed = entries[kind].body["signed"]
        assert signed["statement"]["user"] == who
        assert verify_statement(keys[signed["key"]], signed["statement"], signed["signature"])
    assert entries["job.released"].body["signed"]["statement"]["outputs"] == [
        {"name": "model.skops", "digest": "sha256:" + "a" * 64}
    ]


def test_a_signed_rejection_and_trust_are_recorded(world):
    olga = _key(world, "olga")
    job = world.submit()
    trust = trust_statement(world.ledger.origin, "olga", job_view(job), any_params=False)
    world.service.trust(world.olga, job.id, signed=_envelope(olga, trust))
    entry = world.ledger.entries_for("dataset:iris")[-1]
    assert (entry.type, entry.body["signed"]["statement"]["type"]) == (
        "dataset.trusted",
        "c2d/trust",
    )
    reason = "reads too much"
    rejection = decision_statement(world.ledger.origin, "olga", job_view(job), "reject", reason)
    world.service.reject(world.olga, job.id, reason, _envelope(olga, rejection))
    assert world.ledger.entries_for(job.id)[-1].body["signed"]["statement"]["decision"] == "reject"


def test_a_policy_approval_names_the_signed_trust_it_relied_on(world):
    first = world.approved()
    olga = _key(world, "olga")
    trust = trust_statement(world.ledger.origin, "olga", job_view(first), any_params=False)
    world.service.trust(world.olga, first.id, signed=_envelope(olga, trust))
    trusted_entry = world.ledger.entries_for("dataset:iris")[-1]
    again = world.submit()
    approved = world.ledger.entries_for(again.id)[-1]
    assert (approved.type, approved.body["by_policy"]) == ("job.approved", True)
    assert "signed" not in approved.body  # the server's act, not a person's
    assert approved.body["trust"] == {
        "seq": trusted_entry.seq,
        "trusted_by": "olga",
        "job_id": first.id,
    }
    assert trusted_entry.body["signed"]["statement"]["code_digest"] == again.code_digest


def test_keyholders_take_an_unsigned_action_from_a_person_without_a_key(world):
    assert world.service.signatures is SignaturePolicy.KEYHOLDERS
    job = world.approved()
    assert all("signed" not in e.body for e in world.ledger.entries_for(job.id))


def test_a_person_holding_a_key_cannot_act_with_the_token_alone(world):
    job = world.submit()
    _key(world, "olga")
    size = world.ledger.size()
    with pytest.raises(NotAllowed, match=r"olga has a registered signing key .* a token alone"):
        world.service.approve(world.olga, job.id, "ok")
    assert world.ledger.size() == size
    assert world.store.get_job(job.id).state is S.PENDING


def test_a_revoked_key_is_no_longer_held(world):
    job = world.submit()
    key = _key(world, "olga")
    world.service.revoke_key(world.olga, key_fingerprint(public_key_text(key)), "lost")
    assert world.service.approve(world.olga, job.id, "ok").state is S.APPROVED


@pytest.mark.parametrize("who", ["rita", "olga"])
def test_required_refuses_every_unsigned_action_and_takes_signed_ones(world, who):
    world.service.signatures = SignaturePolicy.REQUIRED
    size = world.ledger.size()
    if who == "rita":
        with pytest.raises(NotAllowed, match="only signed actions, and rita has no signing key"):
            world.submit()
        assert world.store.list_jobs() == []
    else:
        world.service.signatures = SignaturePolicy.KEYHOLDERS
        job = world.submit()
        world.service.signatures = SignaturePolicy.REQUIRED
        size = world.ledger.size()
        with pytest.raises(NotAllowed, match="`c2d login URL --with-token` makes your key"):
            world.service.approve(world.olga, job.id, "ok")
        assert world.store.get_job(job.id).state is S.PENDING
    assert world.ledger.size() == size
    rita, olga = _key(world, "rita"), _key(world, "olga")
    job, _ = _signed_submit(world, rita)
    approved = world.service.approve(world.olga, job.id, "ok", _approval(world, olga, job))
    assert approved.state is S.APPROVED


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"note": "something else"}, "note"),
        ({"origin": "c2d.elsewhere/log"}, "origin"),
        ({"user": "otto"}, "user"),
        ({"decision": "reject"}, "decision"),
        ({"extra": 1}, "extra"),
    ],
    ids=["changed note", "other origin", "other user", "other decision", "extra field"],
)
def test_a_statement_that_differs_is_refused_naming_the_field(world, change, field):
    olga = _key(world, "olga")
    job = world.submit()
    size = world.ledger.size()
    with pytest.raises(InvalidRequest, match=rf"key ed25519:\w+ .*its '{field}' is .*nothing was"):
        world.service.approve(world.olga, job.id, "ok", _approval(world, olga, job, **change))
    assert world.ledger.size() == size
    assert world.store.get_job(job.id).state is S.PENDING
    assert world.store.get_job(job.id).approval is None


def test_another_jobs_approval_replayed_on_this_job_is_refused(world):
    olga = _key(world, "olga")
    first = world.submit()
    second = world.submit(text="print('other')\n")
    replayed = _approval(world, olga, first)
    world.service.approve(world.olga, first.id, "ok", replayed)
    size = world.ledger.size()
    with pytest.raises(InvalidRequest, match=r"its 'code_digest' is"):
        world.service.approve(world.olga, second.id, "ok", replayed)
    assert world.ledger.size() == size
    assert world.store.get_job(second.id).state is S.PENDING


def test_a_key_not_hers_or_revoked_is_refused(world):
    olga, otto = _key(world, "olga"), _key(world, "otto")
    job = world.submit()
    size = world.ledger.size()
    # Another owner's registered key, naming itself: not a key of olga.
    with pytest.raises(NotAllowed, match=r"is not a registered, unrevoked key of olga"):
        world.service.approve(world.olga, job.id, "ok", _approval(world, otto, job))
    # A key that was never registered, signing under olga's fingerprint: does not verify.
    stranger = _approval(world, Ed25519PrivateKey.generate(), job)
    forged = stranger.model_copy(update={"key": key_fingerprint(public_key_text(olga))})
    with pytest.raises(NotAllowed, match=r"does not verify with key ed25519:"):
        world.service.approve(world.olga, job.id, "ok", forged)
    assert world.ledger.size() == size
    revoked = _approval(world, olga, job)
    world.service.revoke_key(world.olga, revoked.key, "lost")
    size = world.ledger.size()
    with pytest.raises(NotAllowed, match=rf"key {revoked.key} is not a registered, unrevoked"):
        world.service.approve(world.olga, job.id, "ok", revoked)
    assert world.ledger.size() == size
    assert world.store.get_job(job.id).state is S.PENDING


def test_a_reused_submit_nonce_is_refused_and_records_nothing(world):
    rita = _key(world, "rita")
    nonce = secrets.token_hex(16)
    first, _ = _signed_submit(world, rita, nonce)
    jobs = len(world.service.list_jobs(world.rita))
    size = world.ledger.size()
    with pytest.raises(Conflict, match=r"used before: its nonce submits one job only"):
        _signed_submit(world, rita, nonce)
    assert (len(world.service.list_jobs(world.rita)), world.ledger.size()) == (jobs, size)
    assert first.state is S.PENDING


def test_a_submit_statement_for_another_bundle_or_a_bad_nonce_is_refused(world):
    rita = _key(world, "rita")
    with pytest.raises(InvalidRequest, match=r"its 'bundle' is"):
        _signed_submit(world, rita, bundle="sha256:" + "0" * 64)
    with pytest.raises(InvalidRequest, match=r"nonce must be 32 lowercase hex"):
        _signed_submit(world, rita, **{"nonce": "NOT-HEX"})
    assert world.service.list_jobs(world.rita) == []


def test_a_malformed_envelope_is_a_clear_invalid_request():
    with pytest.raises(InvalidRequest, match=r"`signed` must be \{statement, signature, key\}"):
        envelope_of({"statement": {}, "signature": "x"})
    assert envelope_of(None) is None
