"""The c2d audit ledger: hash-chained, Merkle-proved, signed, verifiable offline.

This package imports nothing else of c2d. Start with :class:`Ledger`; check receipts and copied
log files offline with :func:`verify_receipt` and :func:`verify_log`.

The names below load on first use (PEP 562): ``ledger.kinds``, the error vocabulary every
``c2d`` command reads, must not bring the Merkle tree and the signing library with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ledger.checkpoint import verify_extends
    from ledger.entry import Entry
    from ledger.errors import (
        BadCheckpoint,
        BadEntry,
        BadKey,
        BadReceipt,
        InconsistentLog,
        KeyFileExposed,
        LedgerConflict,
        LedgerError,
        NotFound,
        NotInTransaction,
        VerificationError,
    )
    from ledger.log import Ledger
    from ledger.receipt import RECEIPT_FORMAT, ReceiptCheck, verify_receipt
    from ledger.verify import VerifyReport, verify_log

_WHERE = {
    "verify_extends": "ledger.checkpoint",
    "Entry": "ledger.entry",
    "BadCheckpoint": "ledger.errors",
    "BadEntry": "ledger.errors",
    "BadKey": "ledger.errors",
    "BadReceipt": "ledger.errors",
    "InconsistentLog": "ledger.errors",
    "KeyFileExposed": "ledger.errors",
    "LedgerConflict": "ledger.errors",
    "LedgerError": "ledger.errors",
    "NotFound": "ledger.errors",
    "NotInTransaction": "ledger.errors",
    "VerificationError": "ledger.errors",
    "Ledger": "ledger.log",
    "RECEIPT_FORMAT": "ledger.receipt",
    "ReceiptCheck": "ledger.receipt",
    "verify_receipt": "ledger.receipt",
    "VerifyReport": "ledger.verify",
    "verify_log": "ledger.verify",
}

__all__ = [
    "RECEIPT_FORMAT",
    "BadCheckpoint",
    "BadEntry",
    "BadKey",
    "BadReceipt",
    "Entry",
    "InconsistentLog",
    "KeyFileExposed",
    "Ledger",
    "LedgerConflict",
    "LedgerError",
    "NotFound",
    "NotInTransaction",
    "ReceiptCheck",
    "VerificationError",
    "VerifyReport",
    "verify_extends",
    "verify_log",
    "verify_receipt",
]


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'ledger' has no attribute {name!r}")
    value = getattr(importlib.import_module(where), name)
    globals()[name] = value
    return value
