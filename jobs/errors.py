"""The exception tree of the job domain.

Every error carries a class attribute ``kind`` that the API and the CLI map, in one place each,
to an HTTP status and an exit code (see ``/work/shared/design.md``). Messages are written for the
person who reads them: what went wrong and what to do next.
"""

from __future__ import annotations

from typing import ClassVar

from ledger.kinds import ErrorKind


class JobsError(Exception):
    """Base of every error raised by ``jobs``; ``kind`` says how the edge should report it."""

    kind: ClassVar[ErrorKind] = ErrorKind.INVALID

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SpecError(JobsError):
    """A job spec (``job.yaml``) is invalid; names the file, the field and what is allowed."""

    kind = ErrorKind.INVALID

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        field: str | None = None,
        allowed: str | None = None,
    ) -> None:
        super().__init__(message)
        self.file = file
        self.field = field
        self.allowed = allowed


class InvalidRequest(JobsError):
    """A request to the service is malformed (a bad name, an empty reason, a bad digest)."""

    kind = ErrorKind.INVALID


class LimitExceeded(JobsError):
    """A job asks for more of a resource than the dataset policy or the host allows."""

    kind = ErrorKind.INVALID

    def __init__(self, field: str, requested: str, cap: str, source: str) -> None:
        super().__init__(
            f"resources.{field}: {requested} requested, but {source} allows at most {cap}; "
            f"lower resources.{field} in job.yaml"
        )
        self.field = field
        self.requested = requested
        self.cap = cap
        self.source = source


class DatasetError(JobsError):
    """A dataset folder cannot be registered or checked (link, device, unreadable file, ...)."""

    kind = ErrorKind.INVALID

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class NotFound(JobsError):
    """The thing does not exist, or the caller may not know that it exists."""

    kind = ErrorKind.NOT_FOUND


class NotAllowed(JobsError):
    """The caller is known but their role does not permit this action."""

    kind = ErrorKind.NOT_ALLOWED


class Unauthenticated(JobsError):
    """No valid token was presented."""

    kind = ErrorKind.UNAUTHENTICATED


class Conflict(JobsError):
    """The action does not fit the current state (already finished, lease held, stale fence)."""

    kind = ErrorKind.CONFLICT


class InvalidTransition(Conflict):
    """A job state change that the transition table does not allow."""

    def __init__(self, from_state: str, to_state: str, job_id: str | None = None) -> None:
        who = f"job {job_id}" if job_id else "a job"
        super().__init__(
            f"{who} cannot go from {from_state} to {to_state}; "
            f"run `c2d status {job_id or 'JOB'}` to see its state"
        )
        self.from_state = from_state
        self.to_state = to_state
        self.job_id = job_id


class LeaseLost(Conflict):
    """A worker no longer holds the job: it was cancelled, finished, or claimed again.

    The worker must stop the job's container; ``cancelled`` tells whether the job was
    cancelled (stop quietly) rather than taken over or already finished.
    """

    def __init__(self, message: str, *, cancelled: bool = False) -> None:
        super().__init__(message)
        self.cancelled = cancelled


class TooLarge(JobsError):
    """An upload, a bundle or a parameter set is larger than allowed."""

    kind = ErrorKind.TOO_LARGE


class DigestMismatch(JobsError):
    """A digest bound at approval differs from what is about to run.

    ``mismatches`` lists ``(what, expected, actual)`` with ``what`` one of
    ``code``, ``image``, ``dataset`` or ``params``; ``what``/``expected``/``actual`` repeat
    the first of them for convenience.
    """

    kind = ErrorKind.FAILED

    def __init__(self, mismatches: list[tuple[str, str, str]]) -> None:
        if not mismatches:
            raise ValueError("DigestMismatch needs at least one mismatch")
        parts = [
            f"{what} digest changed (approved {exp}, now {act})" for what, exp, act in mismatches
        ]
        super().__init__(
            "refused to run: " + "; ".join(parts) + "; the job must be submitted and approved again"
        )
        self.mismatches = list(mismatches)
        self.what, self.expected, self.actual = mismatches[0]


class BundleError(JobsError):
    """A code bundle is unsafe or malformed; ``member`` names the offending entry."""

    kind = ErrorKind.INVALID

    def __init__(self, message: str, *, member: str | None = None) -> None:
        super().__init__(message)
        self.member = member


class StoreUnavailable(JobsError):
    """The state database cannot be used (for example it was written by a newer c2d)."""

    kind = ErrorKind.UNAVAILABLE
