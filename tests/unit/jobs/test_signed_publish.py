"""The publisher's signature on a dataset's registration (``c2d/publish``) through the service:
built alike on both sides, checked inside the transaction, recorded, and every way it can be
wrong refused with nothing recorded."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from jobs.digests import canonical_digest
from jobs.errors import InvalidRequest, NotAllowed
from jobs.models import DatasetPolicy
from jobs.signed_actions import SignedEnvelope, publish_statement
from jobs.user_keys import UserKeyStatement, public_key_text, sign_statement, verify_statement
from runner.host.datasets import Attested, attest_dataset
from tests.kit.worlds import World

NAME = "iris2"


def _key(world: World, who: str) -> Ed25519PrivateKey:
    """A key registered for ``who``, as `c2d login` registers it."""
    key = Ed25519PrivateKey.generate()
    public = public_key_text(key)
    statement = UserKeyStatement(user=who, origin=world.ledger.origin, public_key=public)
    world.service.register_key(world.users[who], public, sign_statement(key, statement)[0])
    return key


def _attested(world: World, owner: str = "olga") -> tuple[DatasetPolicy, Attested]:
    """What `c2d dataset add` makes on the data host before it posts: the policy, and the
    host's hash, profile and signed statement of the folder."""
    assert world.host is not None
    policy = DatasetPolicy(owner=owner, host=world.host.name, caps={"memory": "1GiB"})
    host = world.host
    attested = attest_dataset(
        host.settings, host.registry, host.identity, NAME, world.tmp / "iris", policy
    )
    return policy, attested


def _publish(
    world: World, who: str, key: Ed25519PrivateKey | None, owner: str = "olga", **change: Any
):
    """Register ``iris2`` as ``who``, signed with ``key`` over the statement (with ``change``
    made to it after it was built); the dataset."""
    policy, attested = _attested(world, owner)
    envelope = None
    if key is not None:
        statement = publish_statement(
            world.ledger.origin, who, NAME, attested.statement, policy.public_dump()
        ).model_dump(mode="json")
        signed = {**statement, **change}
        signature, fingerprint = sign_statement(key, signed)
        envelope = SignedEnvelope(statement=signed, signature=signature, key=fingerprint)
    return world.service.register_dataset(
        world.users[who],
        NAME,
        policy,
        attested.statement,
        attested.signature,
        attested.profile,
        envelope,
    )


def _registered(world: World) -> dict[str, Any]:
    entry = world.ledger.entries_for(f"dataset:{NAME}")[-1]
    assert entry.type == "dataset.registered"
    return entry.body


def test_the_statement_names_the_hosts_statement_and_the_policy_by_digest(world) -> None:
    policy, attested = _attested(world)
    statement = publish_statement("o", "olga", NAME, attested.statement, policy.public_dump())
    assert statement.model_dump(mode="json") == {
        "type": "c2d/publish",
        "version": 1,
        "origin": "o",
        "user": "olga",
        "dataset": NAME,
        "host": world.host.name,
        "digest": attested.statement["digest"],
        "host_statement": canonical_digest(attested.statement),
        "policy": canonical_digest(policy.public_dump()),
    }


def test_a_signed_registration_is_recorded_and_verifies_with_her_key(world) -> None:
    olga = _key(world, "olga")
    dataset = _publish(world, "olga", olga)
    body = _registered(world)
    signed = body["signed"]
    # The statement names exactly what the entry records, so the entry alone checks it.
    assert signed["statement"]["digest"] == body["digest"] == dataset.digest
    assert signed["statement"]["host_statement"] == body["host_statement_digest"]
    assert signed["statement"]["policy"] == canonical_digest(body["policy"])
    (key,) = world.store.user_keys("olga")
    assert signed["key"] == key.fingerprint
    assert verify_statement(public_key_text(olga), signed["statement"], signed["signature"])
    report = world.ledger.verify()
    assert (report.ok, report.signed) == (True, 1)


def test_without_a_signature_the_registration_is_the_operators_word(world) -> None:
    _publish(world, "olga", None)
    assert "signed" not in _registered(world)
    assert world.ledger.verify().unsigned == 2  # iris (the world's) and iris2


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"digest": "sha256:" + "0" * 64}, "digest"),
        ({"policy": "sha256:" + "0" * 64}, "policy"),
        ({"host_statement": "sha256:" + "0" * 64}, "host_statement"),
        ({"dataset": "iris"}, "dataset"),
        ({"host": "elsewhere"}, "host"),
        ({"origin": "c2d.elsewhere/log"}, "origin"),
    ],
    ids=["other digest", "other policy", "other host statement", "other dataset", "host", "origin"],
)
def test_a_statement_that_differs_is_refused_naming_the_field(world, change, field) -> None:
    olga = _key(world, "olga")
    size = world.ledger.size()
    with pytest.raises(InvalidRequest, match=rf"its '{field}' is .*nothing was recorded"):
        _publish(world, "olga", olga, **change)
    assert world.ledger.size() == size
    assert world.store.get_dataset(NAME) is None


def test_a_key_not_hers_or_revoked_is_refused_and_records_nothing(world) -> None:
    olga, otto = _key(world, "olga"), _key(world, "otto")
    size = world.ledger.size()
    with pytest.raises(NotAllowed, match=r"is not a registered, unrevoked key of olga"):
        _publish(world, "olga", otto)
    (key,) = world.store.user_keys("olga")
    world.service.revoke_key(world.olga, key.fingerprint, "lost")
    size = world.ledger.size()
    with pytest.raises(NotAllowed, match=rf"key {key.fingerprint} is not a registered, unrevoked"):
        _publish(world, "olga", olga)
    assert world.ledger.size() == size
    assert world.store.get_dataset(NAME) is None


def test_an_admin_registering_for_an_owner_signs_as_herself(world) -> None:
    ada, olga = _key(world, "ada"), _key(world, "olga")
    # The owner's own signature does not make the admin's action hers.
    with pytest.raises(InvalidRequest, match=r"its 'user' is 'olga', here it is 'ada'"):
        _publish(world, "ada", olga, user="olga")
    _publish(world, "ada", ada)
    entry = world.ledger.entries_for(f"dataset:{NAME}")[-1]
    assert (entry.actor, entry.body["signed"]["statement"]["user"]) == ("ada", "ada")
    assert entry.body["policy"]["owner"] == "olga"
    assert world.ledger.verify().ok
