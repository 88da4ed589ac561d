"""Browser sessions: a token exchanged once for a secret only the cookie holds."""

from __future__ import annotations

import pytest

from jobs.accounts import token_hash
from jobs.errors import InvalidRequest, Unauthenticated


def test_a_token_opens_a_session_that_names_its_user_until_it_ends(world):
    size = world.ledger.size()
    user, secret = world.service.open_session(world.tokens["olga"], 60)
    assert user.name == "olga"
    assert world.service.session_user(secret).name == "olga"
    # The store keeps the secret's hash only, and signing in writes nothing to the ledger.
    rows = world.store._read("SELECT secret_hash, user FROM web_sessions")
    assert rows == [(token_hash(secret), "olga")]
    assert secret not in repr(rows)
    assert world.ledger.size() == size
    world.clock.advance(61)
    with pytest.raises(Unauthenticated, match="sign in again"):
        world.service.session_user(secret)


def test_signing_out_ends_only_that_session(world):
    _, first = world.service.open_session(world.tokens["rita"], 600)
    _, second = world.service.open_session(world.tokens["rita"], 600)
    assert first != second
    world.service.close_session(first)
    with pytest.raises(Unauthenticated):
        world.service.session_user(first)
    assert world.service.session_user(second).name == "rita"
    world.service.close_session(first)  # already ended: nothing happens
    world.service.close_session(None)


@pytest.mark.parametrize("token", [None, "", "c2d_wrong"])
def test_no_session_without_a_valid_token(world, token):
    with pytest.raises(Unauthenticated):
        world.service.open_session(token, 600)


@pytest.mark.parametrize("secret", [None, "", "made-up"])
def test_an_unknown_secret_is_no_session(world, secret):
    with pytest.raises(Unauthenticated):
        world.service.session_user(secret)


def test_a_token_is_not_a_session_secret_and_a_session_needs_a_lifetime(world):
    world.service.open_session(world.tokens["olga"], 600)
    with pytest.raises(Unauthenticated):
        world.service.session_user(world.tokens["olga"])
    with pytest.raises(InvalidRequest):
        world.service.open_session(world.tokens["olga"], 0)


def test_ended_sessions_are_dropped_when_the_next_one_opens(world):
    world.service.open_session(world.tokens["olga"], 10)
    world.clock.advance(11)
    world.service.open_session(world.tokens["rita"], 10)
    assert [r[0] for r in world.store._read("SELECT user FROM web_sessions")] == ["rita"]
