"""People: listing users, revoking one, and rotating a token, each change in the ledger.

A token that leaked or was lost must be dealt with at once, and the ledger must show that it
was, by whom, without holding anything of a token:

- **Revoking** (admins) ends a user for good: their token fails at the next request, their
  browser sessions end, and the name is never given out again (``Accounts.add_user``). The last
  admin cannot be revoked: nobody could add users or revoke anyone after. Entry
  ``user.revoked`` (actor: the admin; subject: ``user:NAME``; body: the role and the reason).
- **Rotating** gives a user a new token and ends the old one (and the browser sessions it may
  have opened) at once; people rotate their own, admins anyone's. Entry ``user.token_rotated``
  (subject ``user:NAME``; body empty: nothing of either token goes into the ledger, which
  every signed-in user may read).
"""

from __future__ import annotations

from jobs import access
from jobs.accounts import new_token, token_hash
from jobs.errors import Conflict, InvalidRequest, NotAllowed, NotFound
from jobs.fields import check_note
from jobs.models import User
from jobs.people_records import Account
from jobs.service_core import ServiceCore, user_subject


class People(ServiceCore):
    """Users as admins manage them (see the module docstring)."""

    def list_accounts(self, actor: User) -> list[Account]:
        """Every user, revoked ones too, with the fingerprints of their unrevoked signing keys
        (admins only; ``NotAllowed`` for anyone else)."""
        if not access.is_admin(actor):
            raise NotAllowed("only admins list users; ask one to run `c2d users`")
        keys = self._store.active_fingerprints()
        return [
            a.model_copy(update={"key_fingerprints": keys.get(a.name, ())})
            for a in self._store.accounts()
        ]

    def revoke_user(self, actor: User, name: str, reason: str = "") -> Account:
        """Revoke user ``name`` for good (admins only); return the account as it is now.

        Raises ``NotAllowed`` (not an admin), ``NotFound`` (no such user), ``Conflict``
        (already revoked, or the last admin not revoked), ``InvalidRequest`` (a reason
        ``check_note`` refuses). Entry ``user.revoked``.
        """
        if not access.is_admin(actor):
            raise NotAllowed("only admins revoke users; ask one to run `c2d user revoke`")
        try:
            check_note(reason)
        except ValueError as exc:
            raise InvalidRequest(f"the reason {exc}") from None
        with self._store.transaction() as conn:
            account = self._account(name)
            if account.revoked is not None:
                raise Conflict(
                    f"user {name!r} was revoked already, by {account.revoked_by}; nothing changed"
                )
            if self._store.active_admins() == [name]:
                raise Conflict(
                    f"{name!r} is the last admin; add another admin "
                    "(`c2d user add NAME --role admin`) before revoking this one"
                )
            now = self._now()
            self._store.revoke_user(name, now, actor.name)
            body = {"role": account.role.value, "reason": reason}
            self._record(conn, "user.revoked", actor.name, user_subject(name), body)
        return account.model_copy(update={"revoked": now, "revoked_by": actor.name})

    def rotate_token(self, actor: User, name: str | None = None) -> tuple[Account, str]:
        """Give user ``name`` (default: the actor) a new token, ending the old one at once;
        return the account and the new token, which is shown this once and never stored.

        People rotate their own token, admins anyone's. Raises ``NotAllowed`` (another's
        token, not an admin), ``NotFound`` (no such user), ``Conflict`` (a revoked user).
        Entry ``user.token_rotated``.
        """
        name = name or actor.name
        if name != actor.name and not access.is_admin(actor):
            raise NotAllowed(
                "you may rotate your own token only (`c2d token rotate`); an admin rotates "
                "another user's"
            )
        token = new_token()
        with self._store.transaction() as conn:
            account = self._account(name)
            if not self._store.replace_token(name, token_hash(token), self._now(), actor.name):
                raise Conflict(
                    f"user {name!r} was revoked by {account.revoked_by}; a revoked user gets "
                    "no new token. Add the person under a new name"
                )
            self._record(conn, "user.token_rotated", actor.name, user_subject(name), {})
        return account, token

    def _account(self, name: str) -> Account:
        account = self._store.account(name)
        if account is None:
            raise NotFound(f"there is no user {name!r}; `c2d users` lists them")
        return account
