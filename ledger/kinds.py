"""The vocabulary of failure every c2d layer shares, and the exit codes commands return.

Every error c2d raises (``ledger``, ``jobs``, ``runner``) carries a ``kind`` from ``ErrorKind``;
the edges translate it, each in one table built from this enum: ``EXIT_CODE`` here for every
command (``c2d`` and ``python -m ledger``), the HTTP statuses in ``runner.errors`` for the API
and its client. It lives in the ledger, the layer beneath the others, so that the ledger's own
command shares it while importing nothing of c2d's.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum, StrEnum
from types import MappingProxyType


class ErrorKind(StrEnum):
    """What went wrong, as the person who asked should hear it."""

    FAILED = "failed"  # the work itself failed: a job, a verification, a digest
    INVALID = "invalid"  # bad input: a job.yaml, a flag, a request body
    CONFLICT = "conflict"  # a step the current state does not allow (yet)
    TOO_LARGE = "too_large"  # past a size cap
    NOT_FOUND = "not_found"  # no such thing (or not visible to the asker)
    NOT_ALLOWED = "not_allowed"  # the asker may not do this
    UNAUTHENTICATED = "unauthenticated"  # no valid token
    UNAVAILABLE = "unavailable"  # a service (API, Redis, Docker engine) does not answer


class ExitCode(IntEnum):
    """What a c2d command returns; scripts may rely on these."""

    OK = 0
    FAILED = 1  # the job failed, or a verification (digest, receipt, ledger) failed
    USAGE = 2  # bad usage or input (a job.yaml error, a bad flag, a state conflict)
    NOT_FOUND = 3  # no such job, dataset or user (or not visible to you)
    NOT_ALLOWED = 4  # no valid token, or your role may not do this
    UNAVAILABLE = 5  # the API, Redis or the Docker engine does not answer
    INTERRUPTED = 130  # Ctrl-C


EXIT_CODE: Mapping[ErrorKind, ExitCode] = MappingProxyType(
    {
        ErrorKind.FAILED: ExitCode.FAILED,
        ErrorKind.INVALID: ExitCode.USAGE,
        ErrorKind.CONFLICT: ExitCode.USAGE,
        ErrorKind.TOO_LARGE: ExitCode.USAGE,
        ErrorKind.NOT_FOUND: ExitCode.NOT_FOUND,
        ErrorKind.NOT_ALLOWED: ExitCode.NOT_ALLOWED,
        ErrorKind.UNAUTHENTICATED: ExitCode.NOT_ALLOWED,
        ErrorKind.UNAVAILABLE: ExitCode.UNAVAILABLE,
    }
)
"""The exit code of each kind: one entry per kind (a test holds it to that)."""


def kind_of(value: object) -> ErrorKind:
    """The kind an error (or a kind's name sent by a server) stands for; unknown ones fail."""
    raw = getattr(value, "kind", value)
    try:
        return ErrorKind(str(raw))
    except ValueError:
        return ErrorKind.FAILED


def exit_code_for(value: object) -> ExitCode:
    """The exit code of an error, or of a kind's name."""
    return EXIT_CODE[kind_of(value)]
