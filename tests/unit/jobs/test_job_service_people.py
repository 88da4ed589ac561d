"""People through the service: listing users, revoking one, rotating tokens, in the ledger."""

from __future__ import annotations

import sqlite3

import pytest

from jobs.errors import Conflict, InvalidRequest, NotAllowed, NotFound, Unauthenticated
from jobs.models import Role


def test_admins_list_every_user_with_role_and_revocation(world):
    ada = world.users["ada"]
    world.service.revoke_user(ada, "rob")
    accounts = {a.name: a for a in world.service.list_accounts(ada)}
    assert sorted(accounts) == ["ada", "olga", "otto", "rita", "rob"]
    assert accounts["olga"].role is Role.OWNER
    assert accounts["olga"].revoked is None
    assert accounts["rob"].revoked == world.clock()
    assert accounts["rob"].revoked_by == "ada"
    assert all(a.key_fingerprints == () for a in accounts.values())


@pytest.mark.parametrize("who", ["olga", "rita"])
def test_only_admins_list_or_revoke(world, who):
    size = world.ledger.size()
    with pytest.raises(NotAllowed, match="only admins"):
        world.service.list_accounts(world.users[who])
    with pytest.raises(NotAllowed, match="only admins"):
        world.service.revoke_user(world.users[who], "rob")
    world.service.authenticate(world.tokens["rob"])
    assert world.ledger.size() == size


def test_a_revoked_token_fails_at_once_saying_by_whom(world):
    world.clock.advance(5)
    world.service.revoke_user(world.users["ada"], "rita", reason="laptop stolen")
    with pytest.raises(Unauthenticated, match=r"'rita' was revoked by ada at .*new account"):
        world.service.authenticate(world.tokens["rita"])
    entry = world.ledger.entries_for("user:rita")[-1]
    assert (entry.type, entry.actor) == ("user.revoked", "ada")
    assert entry.body == {"role": "researcher", "reason": "laptop stolen"}
    world.service.authenticate(world.tokens["rob"])  # nobody else is touched


def test_revoking_ends_the_users_browser_sessions(world):
    _, secret = world.service.open_session(world.tokens["olga"], 600)
    _, other = world.service.open_session(world.tokens["otto"], 600)
    world.service.revoke_user(world.users["ada"], "olga")
    with pytest.raises(Unauthenticated):
        world.service.session_user(secret)
    assert world.service.session_user(other).name == "otto"
    with pytest.raises(Unauthenticated, match="revoked"):
        world.service.open_session(world.tokens["olga"], 600)


def test_revoking_twice_an_unknown_user_or_with_a_bad_reason_changes_nothing(world):
    ada = world.users["ada"]
    world.service.revoke_user(ada, "rob")
    size = world.ledger.size()
    with pytest.raises(Conflict, match="revoked already, by ada"):
        world.service.revoke_user(ada, "rob")
    with pytest.raises(NotFound, match="`c2d users`"):
        world.service.revoke_user(ada, "nobody")
    with pytest.raises(InvalidRequest, match="reason"):
        world.service.revoke_user(ada, "rita", reason="\x1b[2Jgone")
    world.service.authenticate(world.tokens["rita"])
    assert world.ledger.size() == size


def test_the_last_admin_cannot_be_revoked_but_one_of_two_can(world):
    ada = world.users["ada"]
    with pytest.raises(Conflict, match="last admin; add another admin"):
        world.service.revoke_user(ada, "ada")
    world.service.authenticate(world.tokens["ada"])
    ann, ann_token = world.service.add_user("ann", Role.ADMIN, actor="ada")
    world.service.revoke_user(ann, "ada")
    with pytest.raises(Unauthenticated):
        world.service.authenticate(world.tokens["ada"])
    with pytest.raises(Conflict, match="last admin"):
        world.service.revoke_user(ann, "ann")
    assert world.service.authenticate(ann_token).name == "ann"


def test_a_revoked_name_is_not_given_out_again(world):
    world.service.revoke_user(world.users["ada"], "rob")
    size = world.ledger.size()
    with pytest.raises(Conflict, match=r"revoked by ada.*new name"):
        world.service.add_user("rob", Role.RESEARCHER, actor="ada")
    assert world.ledger.size() == size
    user, token = world.service.add_user("rob2", Role.RESEARCHER, actor="ada")
    assert world.service.authenticate(token) == user


def test_rotating_replaces_the_token_at_once_and_records_no_token(world):
    old = world.tokens["rita"]
    _, secret = world.service.open_session(old, 600)
    account, new = world.service.rotate_token(world.users["rita"])
    assert account.name == "rita"
    assert new != old
    assert new.startswith("c2d_")
    assert world.service.authenticate(new) == world.users["rita"]
    with pytest.raises(Unauthenticated, match=r"replaced by a new one.*rotated by rita"):
        world.service.authenticate(old)
    with pytest.raises(Unauthenticated):  # a session the old token opened ends with it
        world.service.session_user(secret)
    entry = world.ledger.entries_for("user:rita")[-1]
    assert (entry.type, entry.actor, entry.body) == ("user.token_rotated", "rita", {})
    raw = sqlite3.connect(world.store.path)
    dump = "\n".join(raw.iterdump())
    raw.close()
    assert new not in dump
    assert old not in dump


def test_rotating_twice_leaves_only_the_newest_token_working(world):
    rita = world.users["rita"]
    _, second = world.service.rotate_token(rita)
    _, third = world.service.rotate_token(rita)
    for dead in (world.tokens["rita"], second):
        with pytest.raises(Unauthenticated, match="replaced"):
            world.service.authenticate(dead)
    assert world.service.authenticate(third).name == "rita"


def test_admins_rotate_anyones_token_others_only_their_own(world):
    size = world.ledger.size()
    with pytest.raises(NotAllowed, match="your own token only"):
        world.service.rotate_token(world.users["rita"], "rob")
    with pytest.raises(NotAllowed):  # no hint whether the user exists
        world.service.rotate_token(world.users["rita"], "nobody")
    assert world.ledger.size() == size
    _, token = world.service.rotate_token(world.users["ada"], "rob")
    assert world.service.authenticate(token).name == "rob"
    with pytest.raises(Unauthenticated, match="rotated by ada"):
        world.service.authenticate(world.tokens["rob"])
    assert world.ledger.entries_for("user:rob")[-1].actor == "ada"
    with pytest.raises(NotFound):
        world.service.rotate_token(world.users["ada"], "nobody")


def test_a_revoked_user_gets_no_new_token_and_old_ones_say_revoked(world):
    ada = world.users["ada"]
    _, second = world.service.rotate_token(world.users["rob"])
    world.service.revoke_user(ada, "rob")
    size = world.ledger.size()
    with pytest.raises(Conflict, match="gets no new token"):
        world.service.rotate_token(ada, "rob")
    assert world.ledger.size() == size
    for token in (world.tokens["rob"], second):
        with pytest.raises(Unauthenticated, match="revoked by ada"):
            world.service.authenticate(token)
