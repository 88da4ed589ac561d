"""Signing a person's actions with the key `c2d login` made, when they have one.

``Signer`` is handed to ``runner.client.api.Client``; before a submit, approval, rejection,
trust, release or dataset registration, the client asks it for an envelope over the
statement of that action (``jobs.signed_actions``), built from what the server shows (the job
it reads back; for a registration, what the data host signed and the policy), so the person
signs what they saw and the server rebuilds the same bytes.

The key is read only when an action needs it. No key file: the action goes unsigned (the
operator's word only) and ``on_unsigned`` is told once, with how to get a key. A key file
that is not a registered, unrevoked key of the token's user (another login's, or revoked)
would only have the action refused, so it goes unsigned too, saying why. A key file that
cannot be read, or is exposed or damaged, raises ``KeyFileError`` before anything is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.client.config import ClientEnv

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
                    f"not signed: there is no signing key at {self.path}, so the server "
                    "records this action on its operator's word only; `c2d login URL "
                    "--with-token` makes and registers your key"
                )
                return None
            from runner.client.keys import load_key

            self._key = load_key(self.path)
        return self._key

    def envelope(
        self, identity: Callable[[], Identity], build: Callable[[str, str], ActionStatement]
    ) -> dict[str, Any] | None:
        """``{statement, signature, key}`` over ``build(origin, user)``, or None (unsigned).

        ``identity`` is asked only when there is a key: who the token is, the server's origin,
        and the user's registered keys (to sign only with a key the server will accept)."""
        from jobs.user_keys import public_key_text, sign_statement

        key = self.key()
        if key is None:
            return None
        user, origin, keys = identity()
        public = public_key_text(key)
        mine = [k for k in keys if k.get("public_key") == public and k.get("revoked") is None]
        if not mine:
            self._unsigned(
                f"not signed: the key in {self.path} is not a registered, unrevoked key of "
                f"{user} on this server, so the action is recorded on the operator's word "
                "only; `c2d login` registers a key for this user"
            )
            return None
        statement = build(origin, user).model_dump(mode="json")
        signature, fingerprint = sign_statement(key, statement)
        return {
            "statement": statement,
            "signature": signature,
            "key": fingerprint,
        }
