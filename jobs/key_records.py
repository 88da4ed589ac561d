"""People's public keys as the store keeps them, with where in the ledger each came and went.

Per key (migration 10): its fingerprint (unique for ever: a key once registered, even revoked,
is never registered again, so an old registration statement cannot be replayed), the user it
belongs to, the public key, when it was registered and the sequence number of its ``user.key``
entry; once revoked, when, by whom and the sequence number of that entry. The sequence numbers
answer the question a signed action will ask: was this key a registered, unrevoked key of this
user when the log had N entries (``user_key_at``)?

``KeyRecords`` is the part of ``jobs.store.Store`` that reads and writes them.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Literal

from pydantic import BaseModel

from jobs.fields import FROZEN, SCHEMA_VERSION, Name


class UserKey(BaseModel):
    """One public key of a person: ``public_key`` is base64 of its 32 raw bytes."""

    model_config = FROZEN

    schema_version: Literal[1] = SCHEMA_VERSION
    fingerprint: str
    user: Name
    public_key: str
    registered: float
    registered_seq: int
    revoked: float | None = None
    revoked_by: str | None = None
    revoked_seq: int | None = None

    def valid_at(self, size: int) -> bool:
        """Whether the key was registered and not yet revoked in the log's first ``size``
        entries (an entry with sequence number s is in them when s < size)."""
        registered = self.registered_seq < size
        return registered and (self.revoked_seq is None or self.revoked_seq >= size)


_KEY = (
    "SELECT fingerprint, user, public_key, registered, registered_seq, revoked, revoked_by,"
    " revoked_seq FROM user_keys"
)


def _key(row: tuple[Any, ...]) -> UserKey:
    fields = (
        "fingerprint", "user", "public_key", "registered", "registered_seq", "revoked",
        "revoked_by", "revoked_seq",
    )  # fmt: skip
    return UserKey(**dict(zip(fields, row, strict=True)))


class KeyRecords:
    """Store methods for people's keys (mixed into ``Store``)."""

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        raise NotImplementedError  # provided by Store

    def _write(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        raise NotImplementedError  # provided by Store

    def add_user_key(self, key: UserKey) -> bool:
        """Record a newly registered key; False if its fingerprint was ever registered."""
        done = self._write(
            "INSERT OR IGNORE INTO user_keys (fingerprint, user, public_key, registered,"
            " registered_seq) VALUES (?, ?, ?, ?, ?)",
            (key.fingerprint, key.user, key.public_key, key.registered, key.registered_seq),
        )
        return done.rowcount == 1

    def revoke_user_key(self, fingerprint: str, when: float, by: str, seq: int) -> bool:
        """Mark a key revoked by the entry ``seq``; False if unknown or revoked already."""
        done = self._write(
            "UPDATE user_keys SET revoked = ?, revoked_by = ?, revoked_seq = ?"
            " WHERE fingerprint = ? AND revoked IS NULL",
            (when, by, seq, fingerprint),
        )
        return done.rowcount == 1

    def user_key(self, fingerprint: str) -> UserKey | None:
        """The key with this fingerprint, revoked or not, if it was ever registered."""
        rows = self._read(_KEY + " WHERE fingerprint = ?", (fingerprint,))
        return _key(rows[0]) if rows else None

    def user_keys(self, user: str) -> list[UserKey]:
        """Every key of ``user``, revoked ones too, oldest first."""
        rows = self._read(_KEY + " WHERE user = ? ORDER BY registered_seq", (user,))
        return [_key(r) for r in rows]

    def active_fingerprints(self) -> dict[str, tuple[str, ...]]:
        """Per user, the fingerprints of their keys not revoked (for the list of users)."""
        found: dict[str, list[str]] = {}
        for user, fingerprint in self._read(
            "SELECT user, fingerprint FROM user_keys WHERE revoked IS NULL ORDER BY registered_seq"
        ):
            found.setdefault(user, []).append(fingerprint)
        return {user: tuple(fps) for user, fps in found.items()}

    def user_key_at(self, user: str, fingerprint: str, size: int) -> UserKey | None:
        """The key ``fingerprint`` if it was a registered, unrevoked key of ``user`` when the
        ledger held ``size`` entries; None otherwise (unknown, another's, not yet registered,
        or revoked by then)."""
        key = self.user_key(fingerprint)
        if key is None or key.user != user or not key.valid_at(size):
            return None
        return key

    def use_nonce(self, user: str, nonce: str, job_id: str) -> bool:
        """Record that ``user``'s signed submission with ``nonce`` made ``job_id``; False if
        the nonce was used before (a replayed statement)."""
        done = self._write(
            "INSERT OR IGNORE INTO submit_nonces (user, nonce, job_id) VALUES (?, ?, ?)",
            (user, nonce, job_id),
        )
        return done.rowcount == 1
