"""The c2d audit ledger: hash-chained, Merkle-proved, signed, verifiable offline.

This package imports nothing else of c2d. Start with :class:`Ledger`; check receipts and copied
log files offline with :func:`verify_receipt` and :func:`verify_log`.
"""

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
