"""The runner's exception tree.

Every error carries a `kind` that the API and the CLI translate, in one place each, into an HTTP
status and an exit code. Messages say what the person should do next.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ledger.kinds import ErrorKind, kind_of

K = ErrorKind

HTTP_STATUS: Mapping[ErrorKind, int] = MappingProxyType(
    {
        K.INVALID: 422,
        K.NOT_FOUND: 404,
        K.NOT_ALLOWED: 403,
        K.UNAUTHENTICATED: 401,
        K.CONFLICT: 409,
        K.TOO_LARGE: 413,
        K.UNAVAILABLE: 503,
        K.FAILED: 409,  # the request cannot proceed: a digest differs, a build failed
    }
)
"""The API's status for each error kind: one entry per kind (a test holds it to that)."""

_KIND_OF_STATUS: Mapping[int, ErrorKind] = MappingProxyType(
    {status: kind for kind, status in HTTP_STATUS.items() if kind is not K.FAILED}
    | {400: K.INVALID, 405: K.INVALID, 415: K.INVALID, 416: K.INVALID, 500: K.FAILED}
    | {502: K.UNAVAILABLE, 504: K.UNAVAILABLE}
)


def kind_of_status(status: int) -> ErrorKind:
    """The kind an HTTP error status stands for when no c2d error body says it."""
    return _KIND_OF_STATUS.get(status, K.UNAVAILABLE if status >= 500 else K.FAILED)


class RunnerError(Exception):
    """Base of every error raised by the runner package."""

    kind = ErrorKind.FAILED


class ServiceUnavailable(RunnerError):
    """A service c2d needs (Docker engine, Redis, the API) does not answer."""

    kind = ErrorKind.UNAVAILABLE


class ImageError(RunnerError):
    """An environment image is missing or could not be built."""

    kind = ErrorKind.FAILED


class UnknownEnvironment(RunnerError):
    """A job names an environment this host does not provide."""

    kind = ErrorKind.INVALID


class SandboxError(RunnerError):
    """The sandbox could not prepare, start, watch or clean up a job container."""

    kind = ErrorKind.FAILED


class OutputRejected(RunnerError):
    """A job's outputs broke the collection policy; the job fails with this reason."""

    kind = ErrorKind.FAILED


class ApiError(RunnerError):
    """The c2d API answered with an error; `kind`, `message` and `status` are the server's.

    The class default is "failed"; every instance carries the kind the server sent, so the CLI
    maps it to an exit code exactly as it maps local errors.
    """

    kind = ErrorKind.FAILED

    def __init__(self, kind: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind_of(kind)
        self.message = message
        self.status = status


class IntegrityError(RunnerError):
    """Downloaded bytes, a receipt or a public key do not match what they must be."""

    kind = ErrorKind.FAILED


class ClientConfigError(RunnerError):
    """The client has no usable server URL or token, or its config file cannot be used."""

    kind = ErrorKind.INVALID


class KeyFileError(ClientConfigError):
    """A person's signing key file is missing, unreadable, exposed or not a key; the message
    says what to do, and nothing was changed."""


class SigningKeyRefused(RunnerError):
    """The server refused a signed action because the key that signed it is not a
    registered, unrevoked key of the user (revoked elsewhere, say); nothing was recorded."""

    kind = ErrorKind.NOT_ALLOWED


class UsageError(RunnerError):
    """A command or call was given something it cannot use (a URL without a scheme, a token
    on the wrong channel); the message says what to give instead."""

    kind = ErrorKind.INVALID


class JobFailed(RunnerError):
    """A job that was waited for failed, was rejected or was cancelled (its reason says why)."""

    kind = ErrorKind.FAILED


class UntrustedTypes(RunnerError):
    """A model file needs types the caller has not said they trust; the message lists them."""

    kind = ErrorKind.NOT_ALLOWED


class SettingsError(RunnerError):
    """A `C2D_` setting or a command-line override of one has a value c2d cannot use."""

    kind = ErrorKind.INVALID


class ArtifactError(RunnerError):
    """The artifact store could not keep or hand out an artifact."""

    kind = ErrorKind.FAILED


class ArtifactTooLarge(ArtifactError):
    """An artifact is larger than the cap its caller set; nothing of it was kept."""

    kind = ErrorKind.TOO_LARGE


class ArtifactNotFound(ArtifactError):
    """No artifact with this digest is in the store."""

    kind = ErrorKind.NOT_FOUND


class MissingFile(RunnerError):
    """A file named on the command line (a key, a receipt, a job folder) does not exist."""

    kind = ErrorKind.NOT_FOUND


class NotReady(RunnerError):
    """The job is not in a state that allows this yet (for example fetch before release)."""

    kind = ErrorKind.CONFLICT


class SandboxSpecInvalid(SandboxError):
    """A sandbox spec asks for something the sandbox does not allow (a bad name, path or limit)."""

    kind = ErrorKind.INVALID


class NoToken(RunnerError):
    """A command needs an API token and none is configured."""

    kind = ErrorKind.UNAUTHENTICATED


class TryLater(RunnerError):
    """A worker cannot go on with a job right now (Docker down, the worker is stopping).

    The job keeps its state in the store; the Celery task maps this to ``self.retry()``, and the
    reconciler adopts or re-dispatches the job once its lease runs out.
    """

    kind = ErrorKind.UNAVAILABLE


class HomeNotInitialized(RunnerError):
    """The state folder has no database or ledger key yet."""

    kind = ErrorKind.INVALID


class HomeExists(RunnerError):
    """`c2d init` was pointed at a state folder that already holds a c2d installation."""

    kind = ErrorKind.CONFLICT


class ByoError(RunnerError):
    """A researcher's own image (a Dockerfile or a `docker save` archive) was not accepted.

    ``build_log`` carries what the build or load printed (capped), for the researcher and the
    owner; it is empty when nothing ran.
    """

    kind = ErrorKind.FAILED

    def __init__(self, message: str, *, build_log: str = "") -> None:
        super().__init__(message)
        self.build_log = build_log


class ByoRefused(ByoError):
    """The image breaks the host's policy (a base it does not allow, a URL download, ...)."""

    kind = ErrorKind.NOT_ALLOWED


class ByoInvalid(ByoError):
    """The Dockerfile, build context or archive cannot be read as one (malformed input)."""

    kind = ErrorKind.INVALID


class ByoTooLarge(ByoError):
    """The context, archive or image is past one of the host's caps (size, layers)."""

    kind = ErrorKind.TOO_LARGE


class BuildFailed(ByoError):
    """The researcher's Dockerfile did not build; the message says which step and why."""

    kind = ErrorKind.FAILED


class BuildTimedOut(BuildFailed):
    """The build ran past the host's build-time cap and was stopped."""

    kind = ErrorKind.FAILED


class ImageGone(ByoError):
    """The image a job was pinned to is no longer on this host."""

    kind = ErrorKind.NOT_FOUND


class HostNotEnrolled(RunnerError):
    """This state folder holds no enrolled data host (no ``host.json``, key or credential)."""

    kind = ErrorKind.NOT_FOUND
