"""People's key statements: signed as canonical JSON, verified only unchanged and by their key."""

from __future__ import annotations

import base64

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from jobs.user_keys import (
    UserKeyRotation,
    UserKeyStatement,
    key_fingerprint,
    public_key_text,
    sign_statement,
    verify_statement,
)
from ledger.errors import BadKey
from ledger.keys import raw_public_key
from ledger.statements import STATEMENT_DOMAIN, fingerprint


def _statement(key, **change):
    fields = {"user": "rita", "origin": "c2d.test/log", "public_key": public_key_text(key)}
    return UserKeyStatement(**{**fields, **change})


def test_a_statement_is_typed_and_versioned_and_signed_as_rfc8785_bytes():
    key = Ed25519PrivateKey.generate()
    statement = _statement(key)
    document = statement.model_dump(mode="json")
    assert document["type"] == "c2d/user-key"
    assert document["version"] == 1
    signature, signer = sign_statement(key, statement)
    raw = base64.b64decode(signature)
    key.public_key().verify(raw, STATEMENT_DOMAIN + rfc8785.dumps(document))
    assert signer == fingerprint(raw_public_key(key))  # the data hosts' fingerprint
    assert signer == key_fingerprint(public_key_text(key))
    assert verify_statement(public_key_text(key), document, signature)


@pytest.mark.parametrize(
    "change", [{"user": "rob"}, {"origin": "c2d.other/log"}], ids=["user", "origin"]
)
def test_a_signature_for_another_user_or_server_does_not_verify(change):
    key = Ed25519PrivateKey.generate()
    signature, _ = sign_statement(key, _statement(key))
    assert verify_statement(public_key_text(key), _statement(key), signature)
    assert not verify_statement(public_key_text(key), _statement(key, **change), signature)


def test_a_rotation_is_another_type_so_a_registration_signature_does_not_serve_for_it():
    key = Ed25519PrivateKey.generate()
    signature, _ = sign_statement(key, _statement(key))
    rotation = UserKeyRotation(
        user="rita", origin="c2d.test/log", public_key=public_key_text(key), replaces="ed25519:0"
    )
    assert rotation.type == "c2d/user-key-rotation"
    assert not verify_statement(public_key_text(key), rotation, signature)


def test_another_keys_signature_and_malformed_input_do_not_verify():
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    statement = _statement(key)
    forged, _ = sign_statement(other, statement)
    assert not verify_statement(public_key_text(key), statement, forged)
    good, _ = sign_statement(key, statement)
    assert not verify_statement("not base64!", statement, good)
    assert not verify_statement(public_key_text(key), statement, "%%%")
    assert not verify_statement(base64.b64encode(b"short").decode(), statement, good)


def test_statements_refuse_unknown_fields_and_other_types():
    key = Ed25519PrivateKey.generate()
    with pytest.raises(ValidationError):
        _statement(key, extra="x")
    with pytest.raises(ValidationError):
        _statement(key, type="c2d/user-key-rotation")
    with pytest.raises(ValidationError):
        _statement(key, user="rita\n")
    with pytest.raises(BadKey):
        key_fingerprint("AAAA")
