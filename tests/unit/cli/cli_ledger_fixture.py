"""A real ledger for the CLI unit tests (kept out of conftest so tests can import the type)."""

from __future__ import annotations

from dataclasses import dataclass

from ledger import Ledger


@dataclass
class SmallLog:
    """A real ledger with two jobs' entries and the checkpoints it signed on the way."""

    ledger: Ledger
    entries: list[bytes]
    checkpoints: list[str]
    key: bytes
    origin: str
