"""Routes about people's signing keys: register (``c2d login``), rotate, revoke and list them.

The private key never comes here: a person sends their public key and signatures by it over
the statements ``jobs.user_keys`` defines, which the service rebuilds and checks.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from jobs.fields import GivenName, Note
from jobs.key_records import UserKey
from runner.control.api.deps import Actor, State
from runner.control.api.errors import errors
from runner.control.api.views import rfc3339

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1")

_REQUEST = ConfigDict(frozen=True, extra="forbid", strict=True)
# The shapes are stated whole, so a body the document calls valid is a well-formed key and
# signature, which only the service's check of the signature can refuse (403).
_KEY = Field(
    pattern=r"^[A-Za-z0-9+/]{43}=$",
    description="Base64 of the 32 raw bytes of an Ed25519 public key.",
)
_SIGNATURE = Field(
    pattern=r"^[A-Za-z0-9+/]{86}==$", description="Base64 of the 64 bytes of an Ed25519 signature."
)
_FINGERPRINT = r"^ed25519:[0-9a-f]{32}$"


class NewKey(BaseModel):
    """``POST /v1/me/keys``: a public key and its signature over the ``c2d/user-key``
    statement for the caller and this server's origin."""

    model_config = _REQUEST
    public_key: str = _KEY
    signature: str = _SIGNATURE


class Rotation(BaseModel):
    """``POST /v1/me/keys/rotate``: the new key, and the new and old keys' signatures over the
    ``c2d/user-key-rotation`` statement."""

    model_config = _REQUEST
    public_key: str = _KEY
    signature: str = _SIGNATURE
    replaces: str = Field(pattern=_FINGERPRINT, description="The fingerprint of the key replaced.")
    replaces_signature: str = _SIGNATURE


class KeyRevocation(BaseModel):
    """``POST /v1/keys/{fingerprint}/revoke``: why (optional; it goes into the ledger)."""

    model_config = _REQUEST
    reason: Note = ""


def key_view(key: UserKey) -> dict[str, Any]:
    """A key as the API shows it: whose, which, and when (and by whom) registered or revoked,
    with the sequence numbers of those ledger entries."""
    return {
        "fingerprint": key.fingerprint,
        "user": key.user,
        "public_key": key.public_key,
        "registered": rfc3339(key.registered),
        "registered_seq": key.registered_seq,
        "revoked": rfc3339(key.revoked),
        "revoked_by": key.revoked_by,
        "revoked_seq": key.revoked_seq,
    }


@router.get("/me/keys", responses=errors(401))
def my_keys(actor: Actor, state: State) -> list[dict[str, Any]]:
    """The caller's keys, revoked ones too, oldest first."""
    return [key_view(k) for k in state.ctx.service.list_keys(actor)]


@router.post("/me/keys", status_code=201, responses=errors(401, 403, 409, 422))
def register_key(body: NewKey, actor: Actor, state: State) -> dict[str, Any]:
    """Register a public key for the caller, who proves they hold it by signing the
    ``c2d/user-key`` statement (``{"type", "version", "user", "origin", "public_key"}``)."""
    key = state.ctx.service.register_key(actor, body.public_key, body.signature)
    log.info("key %s registered by %s", key.fingerprint, actor.name)
    return key_view(key)


@router.post("/me/keys/rotate", status_code=201, responses=errors(401, 403, 404, 409, 422))
def rotate_key(body: Rotation, actor: Actor, state: State) -> dict[str, Any]:
    """Register a new key for the caller and revoke the one it replaces, both having signed the
    ``c2d/user-key-rotation`` statement (``{..., "public_key", "replaces"}``)."""
    key = state.ctx.service.rotate_key(
        actor, body.public_key, body.signature, body.replaces, body.replaces_signature
    )
    log.info("key %s of %s rotated to %s", body.replaces, actor.name, key.fingerprint)
    return key_view(key)


@router.get("/users/{name}/keys", responses=errors(401, 403, 404, 422))
def user_keys(name: GivenName, actor: Actor, state: State) -> list[dict[str, Any]]:
    """A user's keys, revoked ones too (the user themselves, or an admin)."""
    return [key_view(k) for k in state.ctx.service.list_keys(actor, name)]


@router.post("/keys/{fingerprint}/revoke", responses=errors(401, 403, 404, 409, 422))
def revoke_key(
    fingerprint: str, actor: Actor, state: State, body: KeyRevocation | None = None
) -> dict[str, Any]:
    """Revoke a key (its owner, or an admin); it stays listed, and in the ledger, as revoked."""
    reason = body.reason if body is not None else ""
    key = state.ctx.service.revoke_key(actor, fingerprint, reason)
    log.info("key %s of %s revoked by %s", fingerprint, key.user, actor.name)
    return key_view(key)
