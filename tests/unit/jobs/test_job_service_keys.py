"""People's keys through the service: registered by their holder, rotated, revoked, logged."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from jobs.errors import Conflict, InvalidRequest, NotAllowed, NotFound
from jobs.user_keys import (
    UserKeyRotation,
    UserKeyStatement,
    public_key_text,
    sign_statement,
)


def _register(world, who, key=None, **change):
    """Register a key for ``who`` the way `c2d login` does; return the key and its record."""
    key = key or Ed25519PrivateKey.generate()
    fields = {"user": who, "origin": world.ledger.origin, "public_key": public_key_text(key)}
    signature, _ = sign_statement(key, UserKeyStatement(**{**fields, **change}))
    return key, world.service.register_key(world.users[who], public_key_text(key), signature)


def _rotation(world, who, old, new, replaces):
    statement = UserKeyRotation(
        user=who,
        origin=world.ledger.origin,
        public_key=public_key_text(new),
        replaces=replaces,
    )
    return sign_statement(new, statement)[0], sign_statement(old, statement)[0]


def test_a_registered_key_is_in_the_store_and_the_ledger_with_its_proof(world):
    key, record = _register(world, "rita")
    entry = world.ledger.entries_for("user:rita")[-1]
    assert (entry.type, entry.actor, entry.seq) == ("user.key", "rita", record.registered_seq)
    assert entry.body["public_key"] == public_key_text(key)
    assert entry.body["fingerprint"] == record.fingerprint
    assert entry.body["statement"]["type"] == "c2d/user-key"
    assert entry.body["statement"]["user"] == "rita"
    # Anyone can check from the entry alone that the key's holder registered it.
    assert sign_statement(key, entry.body["statement"])[0] == entry.body["signature"]
    assert world.store.user_keys("rita") == [record]


def test_more_than_one_key_per_user_and_admins_see_them_in_the_user_list(world):
    _, first = _register(world, "rita")
    _, second = _register(world, "rita")
    accounts = {a.name: a for a in world.service.list_accounts(world.users["ada"])}
    assert accounts["rita"].key_fingerprints == (first.fingerprint, second.fingerprint)
    assert accounts["rob"].key_fingerprints == ()


@pytest.mark.parametrize(
    "change", [{"user": "rob"}, {"origin": "c2d.elsewhere/log"}], ids=["user", "origin"]
)
def test_a_statement_for_another_user_or_origin_is_refused_and_changes_nothing(world, change):
    size = world.ledger.size()
    with pytest.raises(NotAllowed, match=r"does not verify.*nothing was registered"):
        _register(world, "rita", **change)
    assert world.ledger.size() == size
    assert world.store.user_keys("rita") == []


def test_a_key_signed_for_by_another_key_is_refused(world):
    key, thief = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    statement = UserKeyStatement(
        user="rita", origin=world.ledger.origin, public_key=public_key_text(key)
    )
    signature, _ = sign_statement(thief, statement)
    with pytest.raises(NotAllowed, match="does not verify"):
        world.service.register_key(world.users["rita"], public_key_text(key), signature)
    with pytest.raises(InvalidRequest, match="32 raw bytes"):
        world.service.register_key(world.users["rita"], "AAAA", signature)


def test_a_registration_replayed_after_revocation_or_for_another_user_is_refused(world):
    _key, record = _register(world, "rita")
    entry = world.ledger.entries_for("user:rita")[-1]
    world.service.revoke_key(world.users["rita"], record.fingerprint, "lost")
    size = world.ledger.size()
    with pytest.raises(Conflict, match="registered once"):
        world.service.register_key(
            world.users["rita"], entry.body["public_key"], entry.body["signature"]
        )
    with pytest.raises(NotAllowed):  # rob cannot claim rita's key with her signature
        world.service.register_key(
            world.users["rob"], entry.body["public_key"], entry.body["signature"]
        )
    assert world.ledger.size() == size


def test_the_lookup_answers_for_a_user_key_and_a_ledger_size(world):
    _, record = _register(world, "rita")
    registered_at = record.registered_seq
    at = world.store.user_key_at
    assert at("rita", record.fingerprint, registered_at) is None  # not yet in the log
    assert at("rita", record.fingerprint, registered_at + 1) == record
    assert at("rob", record.fingerprint, registered_at + 1) is None  # not rob's
    assert at("rita", "ed25519:" + "0" * 32, registered_at + 1) is None
    revoked = world.service.revoke_key(world.users["rita"], record.fingerprint)
    assert revoked.revoked_seq is not None
    assert at("rita", record.fingerprint, revoked.revoked_seq) is not None  # before it
    assert at("rita", record.fingerprint, revoked.revoked_seq + 1) is None
    assert at("rita", record.fingerprint, world.ledger.size()) is None


def test_rotation_needs_both_keys_and_revokes_the_old_in_the_same_step(world):
    old, record = _register(world, "rita")
    new, thief = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    signature, _ = _rotation(world, "rita", thief, new, record.fingerprint)
    _, old_signature = _rotation(world, "rita", old, new, record.fingerprint)
    size = world.ledger.size()
    for pair in ((signature, signature), (old_signature, old_signature)):
        with pytest.raises(NotAllowed, match="does not verify; nothing changed"):
            world.service.rotate_key(world.users["rita"], public_key_text(new), pair[0],
                                     record.fingerprint, pair[1])  # fmt: skip
    assert world.ledger.size() == size
    signature, old_signature = _rotation(world, "rita", old, new, record.fingerprint)
    rotated = world.service.rotate_key(
        world.users["rita"], public_key_text(new), signature, record.fingerprint, old_signature
    )
    added, revoked = world.ledger.entries_for("user:rita")[-2:]
    assert (added.type, revoked.type) == ("user.key", "user.key_revoked")
    assert added.body["replaces"] == record.fingerprint
    assert added.body["statement"]["type"] == "c2d/user-key-rotation"
    assert revoked.body["fingerprint"] == record.fingerprint
    keys = {k.fingerprint: k for k in world.store.user_keys("rita")}
    assert keys[record.fingerprint].revoked_seq == revoked.seq  # kept, marked revoked
    assert keys[rotated.fingerprint].revoked is None
    with pytest.raises(Conflict, match="revoked already"):  # the old key vouches no more
        world.service.rotate_key(
            world.users["rita"], public_key_text(new), signature, record.fingerprint, old_signature
        )


def test_people_revoke_their_own_keys_and_admins_anyones(world):
    _, mine = _register(world, "rita")
    _, robs = _register(world, "rob")
    with pytest.raises(NotAllowed, match="rob's"):
        world.service.revoke_key(world.users["rita"], robs.fingerprint)
    with pytest.raises(NotFound):
        world.service.revoke_key(world.users["rita"], "ed25519:nope")
    world.service.revoke_key(world.users["rita"], mine.fingerprint)
    with pytest.raises(Conflict, match="revoked already"):
        world.service.revoke_key(world.users["rita"], mine.fingerprint)
    done = world.service.revoke_key(world.users["ada"], robs.fingerprint, "left the lab")
    assert done.revoked_by == "ada"
    entry = world.ledger.entries_for("user:rob")[-1]
    assert (entry.type, entry.actor) == ("user.key_revoked", "ada")
    assert entry.body == {"fingerprint": robs.fingerprint, "reason": "left the lab"}


def test_people_list_their_own_keys_admins_anyones(world):
    _, mine = _register(world, "rita")
    assert [k.fingerprint for k in world.service.list_keys(world.users["rita"])] == [
        mine.fingerprint
    ]
    with pytest.raises(NotAllowed):
        world.service.list_keys(world.users["rob"], "rita")
    assert world.service.list_keys(world.users["ada"], "rita") == [mine]
    with pytest.raises(NotFound):
        world.service.list_keys(world.users["ada"], "nobody")
    assert base64.b64decode(mine.public_key)
