"""Signed statements: what an actor (a data host today, people later) attests, checkable by anyone.

A statement is a JSON object with a ``type`` naming what it says and its version (for example
``c2d.host.outcome/1``). It is signed as the RFC 8785 canonical bytes of the object, prefixed
by ``STATEMENT_DOMAIN`` so a statement signature can never be mistaken for any other signature
the same key makes (a checkpoint's, say). The signature travels as base64, the key as base64 of
its 32 raw bytes, and the key's ``fingerprint`` names it in entries and messages.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import canonical
from ledger.errors import BadKey
from ledger.keys import PUBLIC_KEY_SIZE, signature_is_valid

STATEMENT_DOMAIN = b"c2d-statement/1\n"


def fingerprint(public_key: bytes) -> str:
    """A short, stable name of a public key: ``ed25519:`` and 32 hex digits of its sha256."""
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise BadKey("an Ed25519 public key is 32 bytes")
    return "ed25519:" + hashlib.sha256(public_key).hexdigest()[:32]


def statement_bytes(statement: Mapping[str, Any]) -> bytes:
    """The bytes that are signed: the domain, then the statement's canonical JSON."""
    kind = statement.get("type")
    if not isinstance(kind, str) or "/" not in kind:
        raise ValueError("a statement needs a type with a version, like c2d.host.outcome/1")
    return STATEMENT_DOMAIN + canonical.dumps(dict(statement))


def sign_statement(key: Ed25519PrivateKey, statement: Mapping[str, Any]) -> str:
    """The base64 signature of ``statement`` by ``key``."""
    return base64.b64encode(key.sign(statement_bytes(statement))).decode()


def verify_statement(public_key: bytes, statement: Mapping[str, Any], signature: str) -> bool:
    """Whether ``signature`` (base64) is ``public_key``'s over ``statement``."""
    try:
        raw = base64.b64decode(signature, validate=True)
        message = statement_bytes(statement)
    except (binascii.Error, ValueError):
        return False
    return signature_is_valid(public_key, raw, message)
