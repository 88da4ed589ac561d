"""People's signing keys: the statements a person signs with them, and how they are checked.

A person's Ed25519 key is made on their own machine (``runner.client.keys``) and never leaves
it. To bind it to their user, they sign a ``UserKeyStatement`` naming their user, the server's
origin (its ledger's name) and the public key: the server builds the same statement from what
it knows (the user the token belongs to, its own origin) and checks the signature, so only the
holder of the key can register it, and a statement made for another user or another server
does not verify here. A rotation is signed by the old key and the new one
(``UserKeyRotation``), so it proves the person held both.

Every statement has a ``type`` and a ``version`` and is signed as its RFC 8785 canonical JSON
(``ledger.statements``), the same bytes any verifier recomputes from the ledger entry.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any, Final, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel

from jobs.fields import FROZEN, Name
from ledger import statements
from ledger.errors import BadKey
from ledger.keys import PUBLIC_KEY_SIZE, raw_public_key

USER_KEY: Final = "c2d/user-key"
USER_KEY_ROTATION: Final = "c2d/user-key-rotation"


class UserKeyStatement(BaseModel):
    """ "This public key is mine, as user ``user`` of the server named ``origin``."

    Signed by the key it names (proof that the registrant holds it)."""

    model_config = FROZEN

    type: Literal["c2d/user-key"] = USER_KEY
    version: Literal[1] = 1
    user: Name
    origin: str
    public_key: str
    """Base64 of the 32 raw bytes of the Ed25519 public key."""


class UserKeyRotation(BaseModel):
    """ "Replace my key ``replaces`` by ``public_key``, as user ``user`` of ``origin``."

    Signed by both keys: the new one proves it is held, the old one that its holder agrees."""

    model_config = FROZEN

    type: Literal["c2d/user-key-rotation"] = USER_KEY_ROTATION
    version: Literal[1] = 1
    user: Name
    origin: str
    public_key: str
    replaces: str
    """The fingerprint of the key being replaced (revoked in the same transaction)."""


Statement = UserKeyStatement | UserKeyRotation
"""A statement a person signs (submit, approve and release statements come next)."""


def _document(statement: Statement | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(statement, BaseModel):
        return statement.model_dump(mode="json")
    return dict(statement)


def public_key_text(key: Ed25519PrivateKey) -> str:
    """The public half of ``key`` as statements and the API carry it: base64 of 32 bytes."""
    return base64.b64encode(raw_public_key(key)).decode()


def decode_public_key(text: str) -> bytes:
    """The 32 raw bytes of a public key given as base64; ``BadKey`` for anything else."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != PUBLIC_KEY_SIZE:
        raise BadKey("a public key must be base64 of the 32 raw bytes of an Ed25519 key")
    return raw


def key_fingerprint(public_key: str) -> str:
    """The fingerprint of a base64 public key, as data hosts' keys are named
    (``ledger.statements.fingerprint``)."""
    return statements.fingerprint(decode_public_key(public_key))


def sign_statement(
    key: Ed25519PrivateKey, statement: Statement | Mapping[str, Any]
) -> tuple[str, str]:
    """Sign ``statement`` with ``key``: the base64 signature and the key's fingerprint, the
    pair an entry records to say who signed."""
    document = _document(statement)
    signature = statements.sign_statement(key, document)
    return signature, statements.fingerprint(raw_public_key(key))


def verify_statement(
    public_key: str, statement: Statement | Mapping[str, Any], signature: str
) -> bool:
    """Whether ``signature`` (base64) is the key's (base64) over ``statement``; a malformed
    key or signature is simply not valid."""
    try:
        raw = decode_public_key(public_key)
    except BadKey:
        return False
    return statements.verify_statement(raw, _document(statement), signature)
