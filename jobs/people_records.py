"""People as the store keeps them: accounts, revocations and the tokens rotated away.

A token is never stored, only its sha256 (``jobs.accounts.token_hash``). Per user the store
keeps (migration 9):

- the hash of the one token that works, and, once an admin revoked the user, when and by whom;
  a revoked user's token stops working at the next request, and the name is not given out
  again, so the ledger's entries under it keep meaning one person;
- the hashes of the tokens a rotation replaced, with when and by whom, so a request with an old
  token is told what happened to it (and what to do) rather than that the token is unknown.

``PeopleRecords`` is the part of ``jobs.store.Store`` that reads and writes them; ``refusal``
words what a person presenting an ended token reads (``EndedToken``).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel

from jobs.errors import Unauthenticated
from jobs.fields import FROZEN, SCHEMA_VERSION, Name
from jobs.models import Role, User


class EndedToken(Unauthenticated):
    """A token that worked once but was revoked or rotated away; its message says which and
    what to do (``refusal``), where an unknown token's only says to use a valid one."""


class Account(BaseModel):
    """A user as an admin sees them: name, role, when added, and whether (when, by whom)
    revoked. ``key_fingerprints`` lists the person's unrevoked signing keys
    (``jobs.key_records``), filled in by ``People.list_accounts``."""

    model_config = FROZEN

    schema_version: Literal[1] = SCHEMA_VERSION
    name: Name
    role: Role
    created: float
    revoked: float | None = None
    revoked_by: str | None = None
    key_fingerprints: tuple[str, ...] = ()

    @property
    def user(self) -> User:
        """The account as the ``User`` requests run as."""
        return User(name=self.name, role=self.role, created=self.created)


@dataclass(frozen=True)
class TokenFate:
    """What became of a token that no longer works: whose it was, and how and when it died."""

    user: str
    how: Literal["revoked", "rotated"]
    when: float
    by: str


def _moment(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def refusal(fate: TokenFate) -> str:
    """The 401 message for a token that used to work: what happened, and what to do now."""
    if fate.how == "revoked":
        return (
            f"the access of user {fate.user!r} was revoked by {fate.by} at {_moment(fate.when)}; "
            "its token no longer works. If you need access, ask an admin for a new account"
        )
    return (
        f"this token of user {fate.user!r} was replaced by a new one at {_moment(fate.when)} "
        f"(rotated by {fate.by}); use the new token: `c2d login URL --with-token` saves it"
    )


_ACCOUNT = "SELECT name, role, created, revoked, revoked_by FROM users"


def _account(row: tuple[Any, ...]) -> Account:
    name, role, created, revoked, revoked_by = row
    return Account(
        name=name, role=Role(role), created=created, revoked=revoked, revoked_by=revoked_by
    )


class PeopleRecords:
    """Store methods for revocations and rotated tokens (mixed into ``Store``)."""

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        raise NotImplementedError  # provided by Store

    def _write(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        raise NotImplementedError  # provided by Store

    def accounts(self) -> list[Account]:
        """Every user, revoked ones too, by name."""
        return [_account(r) for r in self._read(_ACCOUNT + " ORDER BY name")]

    def account(self, name: str) -> Account | None:
        """The user called ``name`` (revoked or not), if any."""
        rows = self._read(_ACCOUNT + " WHERE name = ?", (name,))
        return _account(rows[0]) if rows else None

    def active_admins(self) -> list[str]:
        """The names of the admins not revoked."""
        rows = self._read(
            "SELECT name FROM users WHERE role = 'admin' AND revoked IS NULL ORDER BY name"
        )
        return [r[0] for r in rows]

    def revoke_user(self, name: str, when: float, by: str) -> bool:
        """Mark ``name`` revoked and end their browser sessions; False if already revoked."""
        done = self._write(
            "UPDATE users SET revoked = ?, revoked_by = ? WHERE name = ? AND revoked IS NULL",
            (when, by, name),
        ).rowcount
        self._write("DELETE FROM web_sessions WHERE user = ?", (name,))
        return done == 1

    def replace_token(self, name: str, new_hash: str, when: float, by: str) -> bool:
        """Give ``name`` the token with ``new_hash``, keep the old one's hash as retired, and
        end their browser sessions (a leaked token may have opened one). False for a revoked
        or unknown user."""
        rows = self._read(
            "SELECT token_hash FROM users WHERE name = ? AND revoked IS NULL", (name,)
        )
        if not rows:
            return False
        self._write(
            "INSERT INTO retired_tokens (token_hash, user, retired, retired_by)"
            " VALUES (?, ?, ?, ?)",
            (rows[0][0], name, when, by),
        )
        self._write("UPDATE users SET token_hash = ? WHERE name = ?", (new_hash, name))
        self._write("DELETE FROM web_sessions WHERE user = ?", (name,))
        return True

    def token_fate(self, token_hash: str) -> TokenFate | None:
        """What became of the token with this hash, if it belonged to someone once (a working
        token has no fate: ``None``, as for a token never issued)."""
        rows = self._read(
            "SELECT name, revoked, revoked_by FROM users"
            " WHERE token_hash = ? AND revoked IS NOT NULL",
            (token_hash,),
        )
        if rows:
            return TokenFate(rows[0][0], "revoked", rows[0][1], rows[0][2])
        rows = self._read(
            "SELECT t.user, t.retired, t.retired_by, u.revoked, u.revoked_by"
            " FROM retired_tokens t JOIN users u ON u.name = t.user WHERE t.token_hash = ?",
            (token_hash,),
        )
        if not rows:
            return None
        user, retired, retired_by, revoked, revoked_by = rows[0]
        if revoked is not None:  # the user is gone: that is what their holder needs to know
            return TokenFate(user, "revoked", revoked, revoked_by)
        return TokenFate(user, "rotated", retired, retired_by)
