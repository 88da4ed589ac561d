"""Receipts: a subject's entries with inclusion proofs and a signed checkpoint.

A receipt (``c2d-receipt/1``) lets anyone holding the log's public key check, offline, that
these exact entries are in the log the key signed::

    {"format": "c2d-receipt/1", "subject": "...",
     "log": {"origin": "...", "public_key": "<base64 raw 32-byte Ed25519 key>"},
     "checkpoint": "<signed note>",
     "entries": [{"index": 3, "entry": "<base64 canonical bytes>", "proof": ["<base64>"]}]}
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ledger.checkpoint import open_checkpoint
from ledger.entry import Entry
from ledger.errors import BadEntry, BadReceipt, VerificationError
from ledger.merkle import leaf_hash, verify_inclusion

RECEIPT_FORMAT = "c2d-receipt/1"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class _LogInfo(_Model):
    origin: str
    public_key: str


class _Item(_Model):
    index: int = Field(ge=0)
    entry: str
    proof: list[str]


class _Receipt(_Model):
    format: Literal["c2d-receipt/1"]
    subject: str
    log: _LogInfo
    checkpoint: str
    entries: list[_Item] = Field(min_length=1)


class ReceiptCheck(_Model):
    """What a verified receipt proves: these entries are in the log at ``size``/``root``."""

    subject: str
    origin: str
    size: int
    root: str
    entries: tuple[Entry, ...]


def build_receipt(
    subject: str,
    origin: str,
    public_key: bytes,
    checkpoint: str,
    items: Sequence[tuple[int, bytes, Sequence[bytes]]],
) -> dict[str, Any]:
    """Assemble the receipt document from ``(index, canonical bytes, proof)`` triples."""
    return {
        "format": RECEIPT_FORMAT,
        "subject": subject,
        "log": {"origin": origin, "public_key": _b64(public_key)},
        "checkpoint": checkpoint,
        "entries": [
            {"index": index, "entry": _b64(data), "proof": [_b64(h) for h in proof]}
            for index, data, proof in items
        ],
    }


def verify_receipt(
    receipt: dict[str, Any], public_key: bytes, *, origin: str | None = None
) -> ReceiptCheck:
    """Check a receipt offline against the log key you trust.

    Steps: (1) the document has the ``c2d-receipt/1`` shape; (2) it names the key you trust;
    (3) its checkpoint is for the receipt's origin (and ``origin``, if given) and its
    signature verifies; (4) every entry is canonical, sits at its index, belongs to the
    subject and is proved included under the checkpoint root; (5) entries are in index order
    and each one directly after another names that one's hash as ``prev``. Raises BadReceipt
    for a malformed document and VerificationError when a check fails.
    """
    try:
        document = _Receipt.model_validate(receipt)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'receipt'}: {err['msg']}"
            for err in exc.errors()
        )
        raise BadReceipt(f"this is not a {RECEIPT_FORMAT} receipt: {problems}") from None
    claimed_key = _unb64(document.log.public_key, "log.public_key")
    if claimed_key != public_key:
        raise VerificationError(
            "the receipt is for a log with another key than the one you trust; ask the data "
            "owner for the log's public key and check again",
            expected=_b64(public_key),
            actual=document.log.public_key,
        )
    if origin is not None and document.log.origin != origin:
        raise VerificationError(
            f"the receipt is from log {document.log.origin!r}, not {origin!r}",
            expected=origin,
            actual=document.log.origin,
        )
    checkpoint = open_checkpoint(document.checkpoint, public_key, document.log.origin)
    entries: list[Entry] = []
    for position, item in enumerate(document.entries):
        data = _unb64(item.entry, f"entries.{position}.entry")
        try:
            entry = Entry.from_canonical(data)
        except BadEntry as exc:
            raise BadReceipt(f"receipt entry {position} is not a ledger entry: {exc}") from None
        if entry.seq != item.index:
            raise VerificationError(
                f"receipt entry {position} is seq {entry.seq} but claims index {item.index}",
                expected=item.index,
                actual=entry.seq,
            )
        if entry.subject != document.subject:
            raise VerificationError(
                f"receipt entry {position} is about {entry.subject!r}, not {document.subject!r}",
                expected=document.subject,
                actual=entry.subject,
            )
        proof = [_unb64(h, f"entries.{position}.proof") for h in item.proof]
        verify_inclusion(item.index, checkpoint.size, leaf_hash(data), proof, checkpoint.root)
        if entries:
            _check_order(entries[-1], entry)
        entries.append(entry)
    return ReceiptCheck(
        subject=document.subject,
        origin=checkpoint.origin,
        size=checkpoint.size,
        root=checkpoint.root.hex(),
        entries=tuple(entries),
    )


def _check_order(before: Entry, after: Entry) -> None:
    if after.seq <= before.seq:
        raise VerificationError(
            f"receipt entries are out of order: seq {after.seq} follows seq {before.seq}"
        )
    if after.seq == before.seq + 1 and after.prev != before.hash.hex():
        raise VerificationError(
            f"entry {after.seq} does not link to entry {before.seq}",
            expected=before.hash.hex(),
            actual=after.prev,
        )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str, where: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadReceipt(f"receipt field {where} is not base64") from None
