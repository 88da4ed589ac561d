"""Signing a person's actions with the key `c2d login` made, when they have one.

``Signer`` is handed to ``runner.client.api.Client``; before a submit, approval, rejection,
trust, release or dataset registration, the client asks it for an envelope over the
statement of that action (``jobs.signed_actions``), built from what the server shows (the job
it reads back; for a registration, what the data host signed and the policy), so the person
signs what they saw and the server rebuilds the same bytes.

The key is read only when an action needs it. No key file: the action goes unsigned and
``on_unsigned`` is told once, with how to get a key; a server that takes only signed actions
(its default, ``C2D_SIGNATURES=required``) then refuses it with its own words, and one set to
``keyholders`` records it on the operator's word only. A key file that is not a registered,
unrevoked key of the token's user (another login's, or revoked) would only have the action
refused, so it goes unsigned too, saying why. A key file that
cannot be read, or is exposed or damaged, raises ``KeyFileError`` before anything is sent.

Who the token is, the server's origin and whether the key is registered do not change within
a login, so once the server has said so they are kept (``runner.client.signer_cache``) and
later actions sign without asking. If the key was revoked since (from another machine), the
server refuses the signed action: :meth:`Signer.refused` drops what was kept and says so, and
the action is not sent again unsigned behind the person's back.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.client.config import ClientEnv
from runner.errors import SigningKeyRefused

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from jobs.signed_actions import ActionStatement

# The key and the statements load only when an action signs: every CLI command makes a
# ``Signer``, and `c2d status` must stay light (tests/unit/cli/test_cli_startup.py).

Identity = tuple[str, str, list[dict[str, Any]]]
"""The token's user, the server's ledger origin, and that user's keys as the server lists them."""


class Signer:
    """The person's key file for the client environment ``env`` (``runner.client.keys``);
    ``on_unsigned`` hears (once) why an action went unsigned."""

    def __init__(self, env: ClientEnv, on_unsigned: Callable[[str], None] | None = None) -> None:
        self._env = env
        self._on_unsigned = on_unsigned
        self._told = False
        self._key: Ed25519PrivateKey | None = None

    @property
    def path(self) -> Path:
        """Where the key file is (or would be)."""
        from runner.client.keys import key_path

        return key_path(self._env)

    def _unsigned(self, why: str) -> None:
        if self._on_unsigned is not None and not self._told:
            self._told = True
            self._on_unsigned(why)

    def key(self) -> Ed25519PrivateKey | None:
        """The key, or None (and the notice) when there is no key file."""
        if self._key is None:
            if not self.path.exists() and not self.path.is_symlink():
                self._unsigned(
                    f"not signed: there is no signing key at {self.path}; a server that "
                    "takes only signed actions (the default) refuses it, others record it on "
                    "the operator's word only. `c2d login URL --with-token` makes and "
                    "registers your key"
                )
                return None
            from runner.client.keys import load_key

            self._key = load_key(self.path)
        return self._key

    def envelope(
        self,
        identity: Callable[[], Identity],
        build: Callable[[str, str], ActionStatement],
        *,
        url: str | None = None,
        token: str | None = None,
    ) -> dict[str, Any] | None:
        """``{statement, signature, key}`` over ``build(origin, user)``, or None (unsigned).

        ``identity`` is asked only when there is a key, and only when nothing is kept for
        this server ``url``, ``token`` and key (without ``url``, always): who the token is,
        the server's origin, and the user's registered keys (to sign only with a key the
        server will accept). What it says is kept for the next action."""
        from jobs.user_keys import key_fingerprint, public_key_text, sign_statement
        from runner.client import signer_cache

        key = self.key()
        if key is None:
            return None
        public = public_key_text(key)
        fingerprint = key_fingerprint(public)
        known = None
        if url is not None:
            known = signer_cache.recall(self._env, url, token, fingerprint)
        if known is None:
            user, origin, keys = identity()
            mine = [k for k in keys if k.get("public_key") == public and k.get("revoked") is None]
            if not mine:
                self._unsigned(
                    f"not signed: {self._not_registered(user)}; a server that takes only "
                    "signed actions (the default) refuses it, others record it on the "
                    "operator's word only. `c2d login` registers a key for this user"
                )
                return None
            known = signer_cache.Known(user, origin)
            if url is not None:
                signer_cache.remember(self._env, url, token, fingerprint, known)
        statement = build(known.origin, known.user).model_dump(mode="json")
        signature, fingerprint = sign_statement(key, statement)
        return {
            "statement": statement,
            "signature": signature,
            "key": fingerprint,
        }

    def refused(
        self, envelope: dict[str, Any], url: str, token: str | None, message: str
    ) -> SigningKeyRefused:
        """The error for a signed action the server refused (403) over its key ``envelope``
        names: what was kept about that key is dropped, so the next action asks again."""
        from runner.client import signer_cache

        signer_cache.forget(self._env, url, token, str(envelope["key"]))
        user = str(envelope["statement"].get("user"))
        return SigningKeyRefused(
            f"refused, nothing was recorded: {self._not_registered(user)} (the server said: "
            f"{message}); `c2d login` registers a key for this user (run the command again to "
            "send it unsigned, which only a server set to take unsigned actions records)"
        )

    def _not_registered(self, user: str) -> str:
        return f"the key in {self.path} is not a registered, unrevoked key of {user} on this server"
