"""The ledger's exception tree.

Every error carries a class attribute ``kind`` that the API and the CLI map to an HTTP status and
an exit code in one place (see the shared rules): ``"invalid"`` for bad input, ``"failed"`` when a
verification failed, and so on. Messages say what the person should do next.
"""

from __future__ import annotations

from ledger.kinds import ErrorKind


class LedgerError(Exception):
    """Base of every error the ledger raises."""

    kind: ErrorKind = ErrorKind.FAILED


class BadEntry(LedgerError):
    """An entry (type, actor, subject, body or its stored bytes) is not well formed."""

    kind = ErrorKind.INVALID


class BadCheckpoint(LedgerError):
    """A checkpoint note is not well formed (before any signature is checked)."""

    kind = ErrorKind.INVALID


class BadReceipt(LedgerError):
    """A receipt document does not have the ``c2d-receipt/1`` shape."""

    kind = ErrorKind.INVALID


class BadKey(LedgerError):
    """A key file cannot be read as an Ed25519 key."""

    kind = ErrorKind.INVALID


class NotInTransaction(LedgerError):
    """append(conn=...) was called on a connection with no open write transaction."""

    kind = ErrorKind.INVALID


class KeyFileExposed(LedgerError):
    """The private key file is readable by group or others, so it is refused."""

    kind = ErrorKind.NOT_ALLOWED


class VerificationError(LedgerError):
    """A hash, proof, signature or link does not match what it must be.

    ``expected`` and ``actual`` hold the two sides where there are two sides to show.
    """

    kind = ErrorKind.FAILED

    def __init__(self, message: str, *, expected: object = None, actual: object = None) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual


class InconsistentLog(VerificationError):
    """The log no longer extends the last checkpoint it signed, so it refuses to sign again."""

    kind = ErrorKind.FAILED


class LedgerConflict(LedgerError):
    """The ledger file belongs to another origin or was signed by another key."""

    kind = ErrorKind.CONFLICT


class NotFound(LedgerError):
    """Nothing in the log matches what was asked for (a subject, a seq, a size)."""

    kind = ErrorKind.NOT_FOUND
