"""People's signing keys: registering, rotating, revoking and listing them, each in the ledger.

- **Registering** (anyone, for themselves): the person sends their public key and their
  signature over a ``UserKeyStatement`` that the service builds from the user the token belongs
  to and its own ledger's origin; a signature made for another user or another server does not
  verify. A fingerprint ever registered (even revoked) is never registered again, so an old
  statement cannot be replayed. Entry ``user.key`` (actor: the user; subject ``user:NAME``;
  body: the key, its fingerprint, the statement and its signature, so anyone can check it).
- **Rotating** (for themselves): a ``UserKeyRotation`` signed by the old key and the new; the
  new key is registered and the old revoked in one transaction: entries ``user.key`` (with
  ``replaces`` and the old key's signature) then ``user.key_revoked``.
- **Revoking**: a person revokes their own keys, an admin anyone's. The key stays in the store
  and the ledger, marked revoked from the entry ``user.key_revoked`` on (body: fingerprint and
  reason).

Actions are not yet refused for want of a signature; the next step makes submit, approve and
release carry one, checked with ``Store.user_key_at``.
"""

from __future__ import annotations

from jobs import access
from jobs.errors import Conflict, InvalidRequest, NotAllowed, NotFound
from jobs.fields import check_note
from jobs.key_records import UserKey
from jobs.models import User
from jobs.service_core import ServiceCore, user_subject
from jobs.user_keys import (
    UserKeyRotation,
    UserKeyStatement,
    key_fingerprint,
    verify_statement,
)
from ledger.errors import BadKey


class PeopleKeys(ServiceCore):
    """People's public keys (see the module docstring)."""

    def user_key_statement(self, actor: User, public_key: str) -> UserKeyStatement:
        """The statement ``actor`` signs to register ``public_key`` on this server."""
        return UserKeyStatement(user=actor.name, origin=self._ledger.origin, public_key=public_key)

    def register_key(self, actor: User, public_key: str, signature: str) -> UserKey:
        """Bind ``public_key`` (base64) to ``actor``, who signed ``user_key_statement`` with it.

        Raises ``InvalidRequest`` (not a key), ``NotAllowed`` (the signature is not this key's
        over this user's statement for this server), ``Conflict`` (registered before, by anyone,
        revoked or not). Entry ``user.key``.
        """
        fingerprint = _fingerprint(public_key)
        statement = self.user_key_statement(actor, public_key)
        if not verify_statement(public_key, statement, signature):
            raise NotAllowed(
                f"the signature does not verify: it must be key {fingerprint}'s own over the "
                f"{statement.type} statement for user {actor.name!r} on {statement.origin!r}; "
                "nothing was registered. `c2d login` makes and signs it for you"
            )
        body = {
            "public_key": public_key,
            "fingerprint": fingerprint,
            "statement": statement.model_dump(mode="json"),
            "signature": signature,
        }
        with self._store.transaction() as conn:
            self._check_new(fingerprint)
            entry = self._ledger.append(
                "user.key", actor.name, user_subject(actor.name), body, conn=conn
            )
            key = UserKey(
                fingerprint=fingerprint,
                user=actor.name,
                public_key=public_key,
                registered=self._now(),
                registered_seq=entry.seq,
            )
            self._store.add_user_key(key)
        return key

    def rotation_statement(self, actor: User, public_key: str, replaces: str) -> UserKeyRotation:
        """The statement both keys sign to replace ``replaces`` by ``public_key``."""
        return UserKeyRotation(
            user=actor.name, origin=self._ledger.origin, public_key=public_key, replaces=replaces
        )

    def rotate_key(
        self,
        actor: User,
        public_key: str,
        signature: str,
        replaces: str,
        old_signature: str,
    ) -> UserKey:
        """Register ``public_key`` for ``actor`` and revoke their key ``replaces``, both keys
        having signed ``rotation_statement``. Entries ``user.key`` and ``user.key_revoked``.

        Raises ``InvalidRequest``, ``NotFound`` (``replaces`` is not one of the actor's keys),
        ``Conflict`` (it is revoked already; or the new key was registered before),
        ``NotAllowed`` (either signature does not verify).
        """
        fingerprint = _fingerprint(public_key)
        statement = self.rotation_statement(actor, public_key, replaces)
        with self._store.transaction() as conn:
            old = self._own_key(actor, replaces)
            if old.revoked is not None:
                raise Conflict(
                    f"key {replaces} was revoked already (by {old.revoked_by}), so it cannot "
                    "vouch for a new one; nothing changed. Make a new key with `c2d login`"
                )
            signed = ((public_key, signature, "new"), (old.public_key, old_signature, "old"))
            for public, sig, which in signed:
                if not verify_statement(public, statement, sig):
                    raise NotAllowed(
                        f"the {which} key's signature over the {statement.type} statement "
                        f"(user {actor.name!r}, replacing {replaces}) does not verify; nothing "
                        "changed. `c2d key rotate` makes and signs it for you"
                    )
            self._check_new(fingerprint)
            body = {
                "public_key": public_key,
                "fingerprint": fingerprint,
                "statement": statement.model_dump(mode="json"),
                "signature": signature,
                "replaces": replaces,
                "replaces_signature": old_signature,
            }
            subject = user_subject(actor.name)
            added = self._ledger.append("user.key", actor.name, subject, body, conn=conn)
            now = self._now()
            key = UserKey(
                fingerprint=fingerprint,
                user=actor.name,
                public_key=public_key,
                registered=now,
                registered_seq=added.seq,
            )
            self._store.add_user_key(key)
            revoked = self._ledger.append(
                "user.key_revoked",
                actor.name,
                subject,
                {"fingerprint": replaces, "reason": f"rotated to {fingerprint}"},
                conn=conn,
            )
            self._store.revoke_user_key(replaces, now, actor.name, revoked.seq)
        return key

    def revoke_key(self, actor: User, fingerprint: str, reason: str = "") -> UserKey:
        """Revoke key ``fingerprint`` (its owner, or an admin); return it as it is now.

        Raises ``NotFound`` (no such key), ``NotAllowed`` (another's key, not an admin),
        ``Conflict`` (revoked already), ``InvalidRequest`` (a reason ``check_note`` refuses).
        Entry ``user.key_revoked``.
        """
        try:
            check_note(reason)
        except ValueError as exc:
            raise InvalidRequest(f"the reason {exc}") from None
        with self._store.transaction() as conn:
            key = self._store.user_key(fingerprint)
            if key is None:
                raise NotFound(f"there is no key {fingerprint!r}; `c2d key list` lists yours")
            if key.user != actor.name and not access.is_admin(actor):
                raise NotAllowed(
                    f"key {fingerprint} is {key.user}'s; you may revoke your own keys only "
                    "(an admin may revoke anyone's)"
                )
            if key.revoked is not None:
                raise Conflict(f"key {fingerprint} was revoked already, by {key.revoked_by}")
            body = {"fingerprint": fingerprint, "reason": reason}
            entry = self._ledger.append(
                "user.key_revoked", actor.name, user_subject(key.user), body, conn=conn
            )
            now = self._now()
            self._store.revoke_user_key(fingerprint, now, actor.name, entry.seq)
        return key.model_copy(
            update={"revoked": now, "revoked_by": actor.name, "revoked_seq": entry.seq}
        )

    def list_keys(self, actor: User, name: str | None = None) -> list[UserKey]:
        """Every key of user ``name`` (default: the actor), revoked ones too; people see their
        own, admins anyone's. Raises ``NotAllowed``, ``NotFound`` (no such user)."""
        name = name or actor.name
        if name != actor.name and not access.is_admin(actor):
            raise NotAllowed("you may list your own keys only (`c2d key list`)")
        if self._store.account(name) is None:
            raise NotFound(f"there is no user {name!r}; `c2d users` lists them")
        return self._store.user_keys(name)

    def _own_key(self, actor: User, fingerprint: str) -> UserKey:
        key = self._store.user_key(fingerprint)
        if key is None or key.user != actor.name:
            raise NotFound(f"{fingerprint!r} is not one of your keys; `c2d key list` lists them")
        return key

    def _check_new(self, fingerprint: str) -> None:
        known = self._store.user_key(fingerprint)
        if known is not None:
            state = "revoked" if known.revoked is not None else "registered"
            raise Conflict(
                f"key {fingerprint} was registered before (to {known.user}, now {state}); a "
                "key is registered once. Make a new key with `c2d key rotate` or `c2d login`"
            )


def _fingerprint(public_key: str) -> str:
    try:
        return key_fingerprint(public_key)
    except BadKey as exc:
        raise InvalidRequest(f"public_key: {exc}") from None
