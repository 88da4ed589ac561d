"""Receipts: a subject's entries with inclusion proofs and a signed checkpoint.

A receipt lets anyone holding the log's public key check, offline, that these exact entries
are in the log the key signed::

    {"format": "c2d-receipt/2", "subject": "...",
     "log": {"origin": "...", "public_key": "<base64 raw 32-byte Ed25519 key>"},
     "checkpoint": "<signed note>",
     "entries": [{"index": 3, "entry": "<base64 canonical bytes>", "proof": ["<base64>"]}],
     "keys": [{"index": 1, "entry": "...", "proof": [...]}],
     "dataset": {"index": 0, "entry": "...", "proof": [...]}}

``c2d-receipt/2`` adds ``keys``: the key entries (``user.key``, ``user.key_revoked``,
``host.enrolled``) the subject's signed actions rely on, proved against the same checkpoint,
so the actors' signatures can be checked too (``ledger.actors``). ``c2d-receipt/1`` (no
``keys``; nothing but the operator's word on who acted) still verifies. A job's ``/2``
receipt may also carry ``dataset``: the ``dataset.registered`` entry that published the data
it ran on (``ledger.publication``); a receipt without it says nothing about the publication.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ledger.actors import KEY_TYPES, ActionCheck, ActorCheck, first_bad
from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.entry import Entry
from ledger.errors import BadEntry, BadReceipt, VerificationError
from ledger.merkle import leaf_hash, verify_inclusion
from ledger.publication import Publication, check_publication

RECEIPT_FORMAT = "c2d-receipt/2"
RECEIPT_FORMAT_1 = "c2d-receipt/1"


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
    format: Literal["c2d-receipt/1", "c2d-receipt/2"]
    subject: str
    log: _LogInfo
    checkpoint: str
    entries: list[_Item] = Field(min_length=1)
    keys: list[_Item] | None = None
    dataset: _Item | None = None


class ReceiptCheck(_Model):
    """What a verified receipt proves: these entries are in the log at ``size``/``root``,
    and (``c2d-receipt/2``) who signed each action among them (``actions``) and, when the
    receipt carries it, the registration of the job's data (``dataset``)."""

    format: str = RECEIPT_FORMAT
    subject: str
    origin: str
    size: int
    root: str
    entries: tuple[Entry, ...]
    keys: tuple[Entry, ...] = ()
    actions: tuple[ActionCheck, ...] = ()
    dataset: Entry | None = None
    publication: Publication | None = None


def build_receipt(
    subject: str,
    origin: str,
    public_key: bytes,
    checkpoint: str,
    items: Sequence[tuple[int, bytes, Sequence[bytes]]],
    keys: Sequence[tuple[int, bytes, Sequence[bytes]]] = (),
    dataset: tuple[int, bytes, Sequence[bytes]] | None = None,
) -> dict[str, Any]:
    """Assemble the receipt document from ``(index, canonical bytes, proof)`` triples: the
    subject's entries, then the key entries their signatures rely on, and the registration
    of the job's data if there is one."""
    document: dict[str, Any] = {
        "format": RECEIPT_FORMAT,
        "subject": subject,
        "log": {"origin": origin, "public_key": _b64(public_key)},
        "checkpoint": checkpoint,
        "entries": [_item(*item) for item in items],
        "keys": [_item(*item) for item in keys],
    }
    if dataset is not None:
        document["dataset"] = _item(*dataset)
    return document


def _item(index: int, data: bytes, proof: Sequence[bytes]) -> dict[str, Any]:
    return {"index": index, "entry": _b64(data), "proof": [_b64(h) for h in proof]}


def verify_receipt(
    receipt: dict[str, Any],
    public_key: bytes,
    *,
    origin: str | None = None,
    check_actors: bool = True,
) -> ReceiptCheck:
    """Check a receipt offline against the log key you trust.

    Steps: (1) the document has the ``c2d-receipt/1`` or ``/2`` shape; (2) it names the key
    you trust; (3) its checkpoint is for the receipt's origin (and ``origin``, if given) and
    its signature verifies; (4) every entry is canonical, sits at its index, belongs to the
    subject and is proved included under the checkpoint root; (5) entries are in index order
    and each one directly after another names that one's hash as ``prev``; (6) for ``/2``,
    every key entry is a key entry, canonical and proved included the same way, and every
    signed action among the entries verifies against them (``ledger.actors``; with
    ``check_actors=False`` a bad one is only reported in ``actions``); (7) a ``dataset``
    entry is proved included the same way, is the registration of the very digest the job
    binds, signed by its host (``ledger.publication``), and its publisher's signature is
    checked as an action. Raises BadReceipt for a malformed document and VerificationError
    when a check fails.
    """
    try:
        document = _Receipt.model_validate(receipt)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'receipt'}: {err['msg']}"
            for err in exc.errors()
        )
        raise BadReceipt(
            f"this is not a {RECEIPT_FORMAT_1} or {RECEIPT_FORMAT} receipt: {problems}"
        ) from None
    if (document.keys is None) != (document.format == RECEIPT_FORMAT_1):
        raise BadReceipt(f"a {RECEIPT_FORMAT} receipt has keys, a {RECEIPT_FORMAT_1} one none")
    if document.dataset is not None and document.keys is None:
        raise BadReceipt(f"a {RECEIPT_FORMAT_1} receipt has no dataset entry")
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
        entry = _proved(item, f"entries.{position}", f"entry {position}", checkpoint)
        if entry.subject != document.subject:
            raise VerificationError(
                f"receipt entry {position} is about {entry.subject!r}, not {document.subject!r}",
                expected=document.subject,
                actual=entry.subject,
            )
        if entries:
            _check_order(entries[-1], entry)
        entries.append(entry)
    keys = [_key_entry(n, item, checkpoint) for n, item in enumerate(document.keys or ())]
    dataset, publication = None, None
    if document.dataset is not None:
        dataset = _proved(document.dataset, "dataset", "dataset", checkpoint)
        publication = check_publication(dataset, entries, keys)
    actions: list[ActionCheck] = []
    if document.keys is not None:
        extra = () if dataset is None else (dataset,)
        everything = sorted(
            {e.seq: e for e in (*keys, *extra, *entries)}.values(), key=lambda e: e.seq
        )
        actions = ActorCheck(checkpoint.origin).feed_all(everything)
        bad = first_bad(actions)
        if bad is not None and check_actors:
            raise VerificationError(f"{bad.detail}: the log holds an action its actor did not sign")
    # Built from values checked above: validating again would re-encode every entry (half
    # the cost of a receipt's check).
    return ReceiptCheck.model_construct(
        format=document.format,
        subject=document.subject,
        origin=checkpoint.origin,
        size=checkpoint.size,
        root=checkpoint.root.hex(),
        entries=tuple(entries),
        keys=tuple(keys),
        actions=tuple(actions),
        dataset=dataset,
        publication=publication,
    )


def _proved(item: _Item, field: str, name: str, checkpoint: Checkpoint) -> Entry:
    """The entry ``item`` carries (``field`` in the receipt, ``name`` in messages), once its
    bytes are shown to be a canonical entry at the index it claims, included in the tree
    ``checkpoint`` signed."""
    data = _unb64(item.entry, f"{field}.entry")
    try:
        entry = Entry.from_canonical(data)
    except BadEntry as exc:
        raise BadReceipt(f"receipt {name} is not a ledger entry: {exc}") from None
    if entry.seq != item.index:
        raise VerificationError(
            f"receipt {name} is seq {entry.seq} but claims index {item.index}",
            expected=item.index,
            actual=entry.seq,
        )
    proof = [_unb64(h, f"{field}.proof") for h in item.proof]
    verify_inclusion(item.index, checkpoint.size, leaf_hash(data), proof, checkpoint.root)
    return entry


def _key_entry(position: int, item: _Item, checkpoint: Checkpoint) -> Entry:
    entry = _proved(item, f"keys.{position}", f"key {position}", checkpoint)
    if entry.type not in KEY_TYPES:
        raise VerificationError(
            f"receipt key {position} is entry {entry.seq} of type {entry.type}; keys must be "
            "key entries"
        )
    return entry


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
    # Strict mode refuses what ``b64decode(validate=True)`` refuses (characters outside the
    # alphabet, misplaced or missing padding) without its regex pass; a receipt decodes a
    # hundred-odd proof hashes, so the pass showed in its profile.
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError, TypeError):
        raise BadReceipt(f"receipt field {where} is not base64") from None
