"""Signed checkpoints (C2SP signed-note + tlog-checkpoint) and the signing key file."""

from __future__ import annotations

import base64
import os
import re
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import BadCheckpoint, BadKey, KeyFileExposed, VerificationError
from ledger.checkpoint import (
    Checkpoint,
    key_id,
    open_checkpoint,
    parse_note,
    sign_checkpoint,
    sign_note,
)
from ledger.keys import (
    load_or_create_signing_key,
    parse_public_key,
    public_key_path,
    raw_public_key,
    signature_is_valid,
)

# The example of the Go sumdb note package, which defined the signed-note format: the
# verifier key "PeterNeumann+c74f20a3+<base64(0x01 || public key)>", its private seed, and
# the note the Go implementation produces for this text.
GO_VERIFIER = "ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SEED = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_SIGNATURE = (
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
)

ORIGIN = "c2d.test/ledger"
ROOT = bytes(range(32))
B64 = base64.b64encode(ROOT).decode()


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def test_key_id_and_signature_match_the_go_reference() -> None:
    public = base64.b64decode(GO_VERIFIER)[1:]
    signer = Ed25519PrivateKey.from_private_bytes(base64.b64decode(GO_SEED)[1:])
    assert raw_public_key(signer) == public
    assert key_id("PeterNeumann", public).hex() == "c74f20a3"
    note = sign_note(GO_TEXT, "PeterNeumann", signer)
    assert note == f"{GO_TEXT}\n\u2014 PeterNeumann {GO_SIGNATURE}\n"
    text, signatures = parse_note(note)
    assert text == GO_TEXT
    assert signatures[0].key_id.hex() == "c74f20a3"
    assert signature_is_valid(public, signatures[0].signature, text.encode())


def test_checkpoint_note_has_the_tlog_checkpoint_layout(key: Ed25519PrivateKey) -> None:
    note = sign_checkpoint(Checkpoint(ORIGIN, 42, ROOT), key)
    lines = note.split("\n")
    assert lines[:4] == [ORIGIN, "42", base64.b64encode(ROOT).decode(), ""]
    assert lines[4].startswith(f"\u2014 {ORIGIN} ")
    assert lines[5] == ""
    blob = base64.b64decode(lines[4].split(" ")[2])
    assert len(blob) == 4 + 64
    assert blob[:4] == key_id(ORIGIN, raw_public_key(key))


def test_a_signed_checkpoint_opens_with_its_key(key: Ed25519PrivateKey) -> None:
    note = sign_checkpoint(Checkpoint(ORIGIN, 7, ROOT), key)
    assert open_checkpoint(note, raw_public_key(key), ORIGIN) == Checkpoint(ORIGIN, 7, ROOT)


def test_a_checkpoint_under_another_key_is_refused(key: Ed25519PrivateKey) -> None:
    note = sign_checkpoint(Checkpoint(ORIGIN, 7, ROOT), key)
    other = raw_public_key(Ed25519PrivateKey.generate())
    with pytest.raises(VerificationError, match="no signature by the key you trust"):
        open_checkpoint(note, other, ORIGIN)


def test_a_checkpoint_from_another_origin_is_refused(key: Ed25519PrivateKey) -> None:
    note = sign_checkpoint(Checkpoint("elsewhere.example/log", 7, ROOT), key)
    with pytest.raises(
        VerificationError, match=re.escape("'elsewhere.example/log', not 'c2d.test/ledger'")
    ):
        open_checkpoint(note, raw_public_key(key), ORIGIN)


def test_a_checkpoint_with_a_bad_signature_is_refused(key: Ed25519PrivateKey) -> None:
    note = sign_checkpoint(Checkpoint(ORIGIN, 7, ROOT), key)
    text, _, line = note[:-1].rpartition("\n")
    blob = bytearray(base64.b64decode(line.split(" ")[2]))
    blob[10] ^= 1
    forged = f"{text}\n\u2014 {ORIGIN} {base64.b64encode(bytes(blob)).decode()}\n"
    with pytest.raises(VerificationError, match="does not verify"):
        open_checkpoint(forged, raw_public_key(key), ORIGIN)


def test_an_altered_tree_size_breaks_the_signature(key: Ed25519PrivateKey) -> None:
    note = sign_checkpoint(Checkpoint(ORIGIN, 7, ROOT), key)
    with pytest.raises(VerificationError, match="does not verify"):
        open_checkpoint(note.replace("\n7\n", "\n8\n"), raw_public_key(key), ORIGIN)


def test_extension_lines_and_cosignatures_are_allowed(key: Ed25519PrivateKey) -> None:
    text = Checkpoint(ORIGIN, 3, ROOT).text() + "an extension line\n"
    note = sign_note(text, ORIGIN, key)
    witness = Ed25519PrivateKey.generate()
    cosigned = note + sign_note(text, "witness.example", witness).split("\n\n")[1]
    assert open_checkpoint(cosigned, raw_public_key(key)).size == 3


@pytest.mark.parametrize(
    "note",
    [
        "",
        "c2d.test/ledger\n1\nAAAA\n",
        f"c2d.test/ledger\n1\n{B64}\n\n-- c2d.test/ledger AAAAAAA=\n",
        f"c2d.test/ledger\n1\n{B64}\n\n\u2014 c2d.test/ledger !!\n",
        f"c2d.test/ledger\n01\n{B64}\n\n\u2014 c2d.test/ledger AAAAAAA=\n",
        f"c2d.test/ledger\n1\n{base64.b64encode(b'short').decode()}\n\n\u2014 x AAAAAAA=\n",
        f"c2d test\n1\n{B64}\n\n\u2014 x AAAAAAA=\n",
        f"c2d.test/ledger\n1\n{B64}\x07\n\n\u2014 x AAAAAAA=\n",
    ],
    ids=[
        "empty",
        "unsigned",
        "no-em-dash",
        "signature-not-base64",
        "leading-zero-size",
        "short-root",
        "space-in-origin",
        "control-character",
    ],
)
def test_malformed_notes_are_refused_as_invalid(note: str, key: Ed25519PrivateKey) -> None:
    with pytest.raises(BadCheckpoint) as caught:
        open_checkpoint(note, raw_public_key(key))
    assert caught.value.kind == "invalid"


def test_the_key_is_created_private_once_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "ledger.key"
    first = load_or_create_signing_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = load_or_create_signing_key(path)
    assert raw_public_key(first) == raw_public_key(second)
    published = public_key_path(path).read_text()
    assert parse_public_key(published) == raw_public_key(first)
    assert sorted(p.name for p in path.parent.iterdir()) == ["ledger.key", "ledger.key.pub"]


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_a_key_file_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "ledger.key"
    load_or_create_signing_key(path)
    os.chmod(path, mode)
    with pytest.raises(KeyFileExposed, match="chmod 600") as caught:
        load_or_create_signing_key(path)
    assert caught.value.kind == "not_allowed"


def test_a_key_file_of_another_kind_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.key"
    pem = generate_private_key(SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.write_bytes(pem)
    path.chmod(0o600)
    with pytest.raises(BadKey, match="not an Ed25519 key"):
        load_or_create_signing_key(path)
    path.write_bytes(b"garbage")
    with pytest.raises(BadKey, match="not an unencrypted PEM"):
        load_or_create_signing_key(path)


def test_public_keys_are_read_in_every_documented_form(key: Ed25519PrivateKey) -> None:
    raw = raw_public_key(key)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert parse_public_key(raw) == raw
    assert parse_public_key(base64.b64encode(raw).decode() + "\n") == raw
    assert parse_public_key(pem) == raw
    for bad in ["", "AAAA", base64.b64encode(raw + b"x").decode()]:
        with pytest.raises(BadKey, match="base64 of the 32 raw"):
            parse_public_key(bad)
