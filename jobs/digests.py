"""Digests as c2d writes them: ``"sha256:" + 64 lowercase hex digits``.

Structured values (parameters, manifests, metrics) are hashed over their RFC 8785 canonical
JSON encoding, so that the same value always gives the same digest whatever its key order or
number formatting.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Any

import rfc8785
from pydantic import StringConstraints

DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"
_DIGEST_RE = re.compile(DIGEST_PATTERN)

Digest = Annotated[str, StringConstraints(pattern=DIGEST_PATTERN)]
"""A pydantic field type that accepts only ``sha256:<hex>`` digests."""


def sha256_digest(data: bytes) -> str:
    """Return the digest of raw bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(value: Any) -> bytes:
    """Return the RFC 8785 canonical JSON encoding of a JSON value."""
    return rfc8785.dumps(value)


def canonical_digest(value: Any) -> str:
    """Return the digest of the RFC 8785 canonical JSON encoding of ``value``."""
    return sha256_digest(canonical_json(value))


def is_digest(text: str) -> bool:
    """Tell whether ``text`` is a well-formed ``sha256:<hex>`` digest."""
    return bool(_DIGEST_RE.match(text))


def outputs_digest(outputs: Iterable[Mapping[str, Any]]) -> str:
    """The digest the ledger records for a run's outputs, instead of their names and sizes.

    ``outputs`` are ``{"name", "sha256", "bytes"}`` rows (other keys are ignored); the digest
    is of those rows, sorted by name, as RFC 8785 JSON. Names and sizes are derived from the
    private data, so the public log holds only this; whoever holds the released list (the
    researcher after release, an auditor given it) checks it against the log with this.
    """
    rows = sorted(
        ({"name": o["name"], "sha256": o["sha256"], "bytes": o["bytes"]} for o in outputs),
        key=lambda row: str(row["name"]),
    )
    return canonical_digest(rows)
