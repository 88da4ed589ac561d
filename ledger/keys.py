"""The log's Ed25519 signing key on disk, and public keys as people pass them around.

The private key is a PKCS#8 PEM file created on first use with mode 0600; a key file that
group or others can read is refused rather than used. Beside it, ``<key>.pub`` holds the
public key as base64 of the raw 32 bytes (the form receipts carry), for ``--key`` options.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import os
import secrets
import stat
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from ledger.errors import BadKey, KeyFileExposed

PUBLIC_KEY_SIZE = 32


def load_or_create_signing_key(path: Path) -> Ed25519PrivateKey:
    """Load the signing key at ``path``, creating it (mode 0600) if there is none yet.

    Safe when several processes start at once: the key is written to a private temporary
    file and linked into place, so exactly one key wins and every process loads that one.
    """
    try:
        return load_signing_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        # If another process linked its key first, keep theirs: every process loads one key.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    loaded = load_signing_key(path)
    _write_public_key_file(path, raw_public_key(loaded))
    return loaded


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """Load an existing private key, refusing one that group or others may read."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if mode & 0o077:
            raise KeyFileExposed(
                f"the ledger signing key {path} is readable by group or others "
                f"(mode {stat.filemode(mode)}); run `chmod 600 {path}` and try again"
            )
        data = handle.read()
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise BadKey(f"{path} is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BadKey(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def raw_public_key(key: Ed25519PrivateKey) -> bytes:
    """The 32 raw bytes of the public half of ``key``."""
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_path(private_key_path: Path) -> Path:
    """Where the public key file beside a private key lives."""
    return private_key_path.with_name(private_key_path.name + ".pub")


def _write_public_key_file(private_key_path: Path, public_key: bytes) -> None:
    target = public_key_path(private_key_path)
    if target.exists():
        return
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    temporary.write_text(base64.b64encode(public_key).decode() + "\n")
    os.replace(temporary, target)  # readers never see a half-written file


def parse_public_key(data: bytes | str) -> bytes:
    """Accept a public key as base64 of 32 raw bytes, a PEM block or 32 raw bytes."""
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) == PUBLIC_KEY_SIZE:
        return raw
    text = raw.strip()
    if text.startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(text)
        except ValueError as exc:
            raise BadKey(f"the PEM public key cannot be read: {exc}") from None
        if not isinstance(key, Ed25519PublicKey):
            raise BadKey(f"the PEM public key is a {type(key).__name__}, not Ed25519")
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if len(decoded) != PUBLIC_KEY_SIZE:
        raise BadKey(
            "a public key must be base64 of the 32 raw Ed25519 bytes (as in a receipt's "
            "log.public_key or the ledger's <key>.pub file)"
        )
    return decoded


def load_public_key(path: Path) -> bytes:
    """Read a public key file in any form :func:`parse_public_key` accepts."""
    return parse_public_key(path.read_bytes())


def signature_is_valid(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """Ed25519 verification as a yes/no answer; malformed keys answer no."""
    try:
        _verifier(bytes(public_key)).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


@functools.lru_cache(maxsize=256)
def _verifier(public_key: bytes) -> Ed25519PublicKey:
    """The parsed key, kept: a reader checks many notes and statements by the same few keys
    (the log's, its people's), and parsing one costs a fifth of a verify. A malformed key
    raises ValueError, which is not cached."""
    return Ed25519PublicKey.from_public_bytes(public_key)
