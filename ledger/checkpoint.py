"""Signed tree heads in the C2SP tlog-checkpoint format, wrapped in a C2SP signed note.

A checkpoint note looks like::

    c2d.example/ledger
    42
    <base64 of the 32-byte root>

    — c2d.example/ledger <base64(4-byte key ID || 64-byte Ed25519 signature)>

The signature covers the text above the blank line, its final newline included. The key ID is
the first four bytes of SHA-256(key name || 0x0A || 0x01 || public key), 0x01 naming Ed25519.
The log's key name is its origin. Parsing never trusts a checkpoint before its signature by
the caller's key has been checked (:func:`open_checkpoint`); a reader who kept an earlier
checkpoint checks that a new one extends it with :func:`verify_extends`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.errors import BadCheckpoint, VerificationError
from ledger.keys import raw_public_key, signature_is_valid
from ledger.merkle import HASH_SIZE, verify_consistency

SIGNATURE_PREFIX = "\u2014 "  # an em dash and a space open every signature line
ED25519_SIGNATURE_TYPE = b"\x01"
MAX_SIGNATURES = 100
_SIZE_LINE = re.compile(r"^(0|[1-9][0-9]{0,19})$")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")  # control characters but the newline


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: the log's origin, its size and the RFC 9162 root at that size."""

    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        """The note text that gets signed (three lines, each ending in a newline)."""
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"


@dataclass(frozen=True)
class NoteSignature:
    """One signature line of a signed note, not yet verified."""

    name: str
    key_id: bytes
    signature: bytes


def check_key_name(name: str) -> str:
    """A key name (and so an origin) is non-empty, printable, with no spaces and no '+'."""
    # Every whitespace character but the space is unprintable, so this is "printable, no
    # whitespace" in two C loops instead of a Python one per character.
    if not name or "+" in name or " " in name or not name.isprintable():
        raise BadCheckpoint(
            f"{name!r} cannot name a log: use a non-empty name without spaces or '+', "
            "such as 'c2d.example.org/ledger'"
        )
    return name


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte key ID of an Ed25519 key, per the C2SP signed-note specification."""
    material = name.encode() + b"\n" + ED25519_SIGNATURE_TYPE + public_key
    return hashlib.sha256(material).digest()[:4]


def sign_note(text: str, name: str, key: Ed25519PrivateKey) -> str:
    """Sign ``text`` as key ``name``; return the whole note (text, blank line, signature)."""
    check_key_name(name)
    _check_text(text)
    signature = key.sign(text.encode())
    blob = base64.b64encode(key_id(name, raw_public_key(key)) + signature).decode()
    return f"{text}\n{SIGNATURE_PREFIX}{name} {blob}\n"


def parse_note(note: str) -> tuple[str, list[NoteSignature]]:
    """Split a signed note into its text and its signature lines; check only the syntax."""
    if not isinstance(note, str):
        raise BadCheckpoint("a signed note must be text")
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise BadCheckpoint(
            "not a signed note: expected text, a blank line, then signature lines, "
            "ending with a newline"
        )
    text = note[: split + 1]
    _check_text(text)
    lines = note[split + 2 : -1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise BadCheckpoint(f"the note has {len(lines)} signatures, more than {MAX_SIGNATURES}")
    return text, [_parse_signature_line(line) for line in lines]


def _check_text(text: str) -> None:
    if not text.endswith("\n") or "\n\n" in text:
        raise BadCheckpoint("note text must end with a newline and contain no blank line")
    if _CONTROL.search(text):
        raise BadCheckpoint("note text must not contain control characters")


def _parse_signature_line(line: str) -> NoteSignature:
    if not line.startswith(SIGNATURE_PREFIX):
        raise BadCheckpoint(f"signature line {line[:40]!r} does not start with an em dash")
    parts = line[len(SIGNATURE_PREFIX) :].split(" ")
    if len(parts) != 2:
        raise BadCheckpoint(f"signature line {line[:40]!r} is not '— <name> <base64>'")
    name, blob = parts
    check_key_name(name)
    try:
        raw = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError):
        raise BadCheckpoint(f"the signature by {name!r} is not base64") from None
    if len(raw) < 5:
        raise BadCheckpoint(f"the signature by {name!r} is too short")
    return NoteSignature(name=name, key_id=raw[:4], signature=raw[4:])


def parse_checkpoint_text(text: str) -> Checkpoint:
    """Read origin, size and root from checkpoint text; extension lines are allowed."""
    lines = text.split("\n")
    if len(lines) < 4:
        raise BadCheckpoint("a checkpoint needs an origin, a size and a root line")
    origin, size_line, root_line = lines[0], lines[1], lines[2]
    check_key_name(origin)
    if not _SIZE_LINE.match(size_line):
        raise BadCheckpoint(f"checkpoint size {size_line!r} is not a plain decimal number")
    try:
        root = base64.b64decode(root_line, validate=True)
    except (binascii.Error, ValueError):
        raise BadCheckpoint("the checkpoint root is not base64") from None
    if len(root) != HASH_SIZE:
        raise BadCheckpoint(f"the checkpoint root is {len(root)} bytes, not {HASH_SIZE}")
    return Checkpoint(origin=origin, size=int(size_line), root=root)


def sign_checkpoint(checkpoint: Checkpoint, key: Ed25519PrivateKey) -> str:
    """The signed note for ``checkpoint``, signed by ``key`` under the origin's name."""
    return sign_note(checkpoint.text(), checkpoint.origin, key)


def open_checkpoint(note: str, public_key: bytes, origin: str | None = None) -> Checkpoint:
    """Verify a checkpoint note against a trusted key and return what it says.

    Steps: (1) parse the note; (2) parse the checkpoint text; (3) if ``origin`` is given,
    the checkpoint must be for that origin; (4) a signature line named after the origin must
    carry this key's ID; (5) that signature must verify. Any failure raises: BadCheckpoint
    for malformed notes, VerificationError for a wrong origin, key or signature.
    """
    text, signatures = parse_note(note)
    checkpoint = parse_checkpoint_text(text)
    if origin is not None and checkpoint.origin != origin:
        raise VerificationError(
            f"the checkpoint is for log {checkpoint.origin!r}, not {origin!r}",
            expected=origin,
            actual=checkpoint.origin,
        )
    wanted = key_id(checkpoint.origin, public_key)
    mine = [s for s in signatures if s.name == checkpoint.origin and s.key_id == wanted]
    if not mine:
        raise VerificationError(
            f"the checkpoint for {checkpoint.origin!r} carries no signature by the key you "
            f"trust (key ID {wanted.hex()}); check that you passed the log's public key",
            expected=wanted.hex(),
            actual=[s.key_id.hex() for s in signatures],
        )
    for signature in mine:
        if not signature_is_valid(public_key, signature.signature, text.encode()):
            raise VerificationError(
                f"the signature on the checkpoint for {checkpoint.origin!r} at size "
                f"{checkpoint.size} does not verify: the note was altered or forged"
            )
    return checkpoint


def verify_extends(
    kept: str, new: str, proof: Sequence[bytes], public_key: bytes, origin: str | None = None
) -> Checkpoint:
    """A reader's check that the log's ``new`` checkpoint extends the one it ``kept``.

    Both notes are opened with ``public_key``; ``proof`` is the log's consistency proof from
    the kept size to the new size. Raises VerificationError if the log shrank, forked or was
    rewritten since the reader kept its checkpoint; returns the new checkpoint otherwise.
    """
    old = open_checkpoint(kept, public_key, origin)
    latest = open_checkpoint(new, public_key, old.origin)
    if latest.size < old.size:
        raise VerificationError(
            f"the log shrank from {old.size} to {latest.size} entries since you kept its "
            f"checkpoint: entries {latest.size}..{old.size - 1} were removed",
            expected=old.size,
            actual=latest.size,
        )
    if old.size == 0:
        return latest
    try:
        verify_consistency(old.size, latest.size, old.root, latest.root, proof)
    except VerificationError as exc:
        raise VerificationError(
            f"the log at size {latest.size} does not extend the checkpoint you kept at size "
            f"{old.size}: the log was forked or its history rewritten ({exc})",
            expected=exc.expected,
            actual=exc.actual,
        ) from None
    return latest
