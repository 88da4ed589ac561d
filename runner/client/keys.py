"""A person's signing key on their own machine, and binding it to their user on a server.

The key is an Ed25519 private key in PKCS#8 PEM beside the file `c2d login` saves
(``runner.client.config``): ``~/.config/c2d/config.key``, mode 0600 in a 0700 folder. It is
made here and never sent: the server gets the public half and signatures by it
(``jobs.user_keys``).

- ``ensure_registered`` (`c2d login`): make the key if there is none, then register it unless
  the server has it already.
- ``rotate`` (`c2d key rotate`): make a new key beside the old (``config.key.new``), have both
  sign the rotation, and only when the server accepted it put the new key in place.

A missing, unreadable, exposed or corrupt key file raises ``KeyFileError`` saying what to do;
the file is never overwritten or deleted on the way.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from jobs.user_keys import (
    UserKeyRotation,
    UserKeyStatement,
    key_fingerprint,
    public_key_text,
    sign_statement,
)
from runner.client.api import Client
from runner.client.config import ClientEnv, config_path
from runner.errors import KeyFileError


def key_path(env: ClientEnv) -> Path:
    """Where the person's key lives: beside the file `c2d login` saves, named after it
    (``config.json``, ``config.key``), so two logins kept in one folder keep two keys."""
    return config_path(env).with_suffix(".key")


def load_key(path: Path) -> Ed25519PrivateKey:
    """The key at ``path``; ``KeyFileError`` if it is missing, exposed or not a key."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise KeyFileError(
            f"there is no signing key at {path}; `c2d login URL --with-token` makes one and "
            "registers it"
        ) from None
    except OSError as exc:
        raise KeyFileError(
            f"cannot read your signing key {path} ({exc}); nothing changed"
        ) from None
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        data = handle.read(64 * 1024)
    if mode & 0o077:
        raise KeyFileError(
            f"your signing key {path} is readable by others (mode {stat.filemode(mode)}); run "
            f"`chmod 600 {path}`, and if others may have read it, `c2d key rotate`"
        )
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(
            f"{path} is not an Ed25519 private key in PEM (damaged, or another file); nothing "
            "changed. Put the right file back, or move this one away and run `c2d login` to "
            "make a new key (then `c2d key revoke` the lost one)"
        )
    return key


def create_key(path: Path) -> Ed25519PrivateKey:
    """Make a new key at ``path`` (mode 0600, folder 0700); never replaces an existing file."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise KeyFileError(f"{path} exists already; nothing was changed") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
        handle.flush()
        os.fsync(handle.fileno())
    return key


@dataclass(frozen=True)
class KeyOutcome:
    """What a key step did: the key's fingerprint, where it lives, and what happened."""

    fingerprint: str
    path: Path
    done: Literal["created", "registered", "kept", "rotated"]
    replaced: str | None = None

    def document(self) -> dict[str, Any]:
        """As `--json` prints it."""
        return {
            "fingerprint": self.fingerprint,
            "key_file": str(self.path),
            "done": self.done,
            "replaced": self.replaced,
        }


def ensure_registered(client: Client, path: Path, user: str, origin: str) -> KeyOutcome:
    """Make the key at ``path`` if there is none, and register it with ``user`` on the server
    of ``origin`` unless it is registered already. A key the server revoked is refused
    (``KeyFileError``): it can no longer sign."""
    created = not path.exists() and not path.is_symlink()
    key = create_key(path) if created else load_key(path)
    public = public_key_text(key)
    known = {k["public_key"]: k for k in client.user_keys()}
    mine = known.get(public)
    if mine is not None and mine.get("revoked") is None:
        return KeyOutcome(mine["fingerprint"], path, "kept")
    if mine is not None:
        raise KeyFileError(
            f"your signing key {path} ({mine['fingerprint']}) was revoked by "
            f"{mine['revoked_by']}; it can no longer sign. Move the file away and run "
            "`c2d login` again to make and register a new key"
        )
    statement = UserKeyStatement(user=user, origin=origin, public_key=public)
    signature, fingerprint = sign_statement(key, statement)
    client.register_key(public, signature)
    return KeyOutcome(fingerprint, path, "created" if created else "registered")


def rotate(client: Client, path: Path, user: str, origin: str) -> KeyOutcome:
    """Replace the key at ``path`` by a new one, on the server and here.

    The new key is written to ``config.key.new`` first; the old file is replaced only after the
    server recorded the rotation, so a refused or failed call leaves the old key in place.
    """
    old = load_key(path)
    staged = path.with_name(path.name + ".new")
    if staged.exists() or staged.is_symlink():
        raise KeyFileError(
            f"{staged} is left from a rotation that was interrupted; nothing changed. If "
            "`c2d key list` shows its key as registered, move it over "
            f"{path.name}; if not, delete it. Then run `c2d key rotate` again"
        )
    new = create_key(staged)
    try:
        replaces = key_fingerprint(public_key_text(old))
        statement = UserKeyRotation(
            user=user, origin=origin, public_key=public_key_text(new), replaces=replaces
        )
        signature, fingerprint = sign_statement(new, statement)
        old_signature, _ = sign_statement(old, statement)
        client.rotate_key(statement.public_key, signature, replaces, old_signature)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    os.replace(staged, path)
    return KeyOutcome(fingerprint, path, "rotated", replaced=replaces)
