"""One ledger entry and the bytes that are hashed, chained and proved.

An entry is ``{seq, prev, time, type, actor, subject, body}``. Its canonical bytes are the
RFC 8785 (JSON Canonicalization Scheme) encoding of that object; ``hash = SHA-256(bytes)`` is
what the next entry's ``prev`` names, and ``SHA-256(0x00 || bytes)`` is its Merkle leaf. The
entry schema is fixed by the log format; its version travels with the documents that carry
entries (``c2d-receipt/1``) and with the database (``ledger_meta.schema_version``).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ledger import canonical
from ledger.errors import BadEntry
from ledger.merkle import leaf_hash

GENESIS_PREV = "0" * 64
"""The ``prev`` of entry 0: there is no previous entry."""

MAX_SEQ = 2**53 - 1
"""The largest integer RFC 8785 encodes exactly."""

TYPE_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$"
TIME_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$"
_PRINTABLE = r"^[^\x00-\x1f\x7f]+$"


def utc_timestamp(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds and a ``Z``, the only time form entries carry."""
    if moment.tzinfo is None:
        raise BadEntry("entry times must be timezone-aware; pass datetime.now(UTC)")
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


class Entry(BaseModel):
    """A validated, immutable ledger entry.

    Construction canonicalizes the entry once; ``canonical_bytes()`` returns exactly the bytes
    that were (or will be) stored and hashed, and ``body`` is re-read from them so it always
    equals what is hashed. ``type`` is dotted lowercase (``job.submitted``); ``body`` is a JSON
    object; ``time`` is RFC 3339 UTC.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    seq: int = Field(ge=0, le=MAX_SEQ)
    prev: str = Field(pattern=r"^[0-9a-f]{64}$")
    time: str = Field(pattern=TIME_PATTERN)
    type: str = Field(pattern=TYPE_PATTERN, max_length=128)
    actor: str = Field(pattern=_PRINTABLE, max_length=256)
    subject: str = Field(pattern=_PRINTABLE, max_length=256)
    body: dict[str, Any]

    _canonical: bytes = PrivateAttr(default=b"")

    @field_validator("time")
    @classmethod
    def _real_date(cls, value: str) -> str:
        datetime.fromisoformat(value)  # rejects month 13 and the like, which the pattern allows
        return value

    @model_validator(mode="after")
    def _canonicalize(self, info: ValidationInfo) -> Entry:
        stored = info.context.get("stored_bytes") if info.context else None
        if stored is not None:
            # Bytes read back from our own table: they were canonicalized when written, and
            # re-encoding every row would dominate reads. `verify` checks the hashes instead.
            self._canonical = stored
            return self
        try:
            body = canonical.dumps(self.body)
            actor = canonical.dumps(self.actor)
            subject = canonical.dumps(self.subject)
        except (TypeError, ValueError) as exc:  # rfc8785's errors are ValueErrors
            raise ValueError(f"body cannot be encoded as canonical JSON: {exc}") from exc
        # The same bytes rfc8785.dumps(whole entry) gives, at half the cost: the seven keys are
        # fixed and already in RFC 8785 order, and prev, seq, time and type are validated to
        # need no escaping, so only the free-form values go through the encoder.
        self._canonical = b"".join(
            (
                b'{"actor":',
                actor,
                b',"body":',
                body,
                b',"prev":"',
                self.prev.encode(),
                b'","seq":',
                b"%d" % self.seq,
                b',"subject":',
                subject,
                b',"time":"',
                self.time.encode(),
                b'","type":"',
                self.type.encode(),
                b'"}',
            )
        )
        # Re-read the body from the bytes so later mutation of the caller's dict cannot make
        # the entry disagree with its hash, and 1.0 reads back as the 1 that was hashed.
        self.__dict__["body"] = json.loads(body)
        return self

    def canonical_bytes(self) -> bytes:
        """The RFC 8785 bytes of this entry."""
        return self._canonical

    @property
    def hash(self) -> bytes:
        """SHA-256 of the canonical bytes; the next entry's ``prev`` is its hex."""
        return hashlib.sha256(self._canonical).digest()

    @property
    def leaf_hash(self) -> bytes:
        """This entry's RFC 9162 Merkle leaf hash."""
        return leaf_hash(self._canonical)

    @classmethod
    def create(
        cls,
        *,
        seq: int,
        prev: str,
        time: str,
        type: str,
        actor: str,
        subject: str,
        body: dict[str, Any],
    ) -> Entry:
        """Validate and canonicalize a new entry; raise BadEntry naming what is wrong."""
        fields = {"seq": seq, "prev": prev, "time": time, "type": type}
        fields |= {"actor": actor, "subject": subject, "body": body}
        try:
            return cls.model_validate(fields)
        except ValidationError as exc:
            raise BadEntry(_describe(exc, type)) from None

    @classmethod
    def from_canonical(cls, data: bytes, *, trusted: bool = False) -> Entry:
        """Parse stored or received bytes back into an entry.

        Unless ``trusted`` (bytes from our own table), the bytes must be exactly the RFC 8785
        encoding of the entry they parse to, so two parties can never disagree about what
        was hashed. Canonical form is shown by parsing and encoding once
        (:func:`ledger.canonical.loads_proven`), or, for what that route leaves open, by
        encoding the parsed object with :func:`ledger.canonical.dumps` and comparing; the
        entry is built from ``data`` itself, so its body is what the bytes say.
        """
        proven, obj = (False, None) if trusted else canonical.loads_proven(data)
        if not proven:
            try:
                obj = json.loads(data)
            except (ValueError, TypeError) as exc:
                raise BadEntry(f"entry bytes are not JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise BadEntry("entry bytes are not a JSON object")
        try:
            entry = cls.model_validate(obj, context={"stored_bytes": data})
        except ValidationError as exc:
            raise BadEntry(_describe(exc, str(obj.get("type")))) from None
        if not trusted and not proven:
            try:
                encoded = canonical.dumps(obj)
            except ValueError as exc:  # NaN, 1e400 or 2**60 parse, but have no RFC 8785 form
                raise BadEntry(
                    f"invalid ledger entry of type {entry.type!r}: body cannot be encoded as "
                    f"canonical JSON: {exc}"
                ) from None
            if encoded != data:
                raise BadEntry(f"entry {entry.seq} is not in RFC 8785 canonical form")
        return entry


def _describe(exc: ValidationError, type_name: str) -> str:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'entry'}: {err['msg']}" for err in exc.errors()
    )
    hint = (
        " (types are dotted lowercase like 'job.submitted'; bodies are JSON objects "
        "with string keys, integers within 2^53 and finite numbers)"
    )
    return f"invalid ledger entry of type {type_name!r}: {problems}{hint}"
