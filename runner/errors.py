"""The runner's exception tree.

Every error carries a `kind` that the API and the CLI translate, in one place each, into an HTTP
status and an exit code. Messages say what the person should do next.
"""

from __future__ import annotations


class RunnerError(Exception):
    """Base of every error raised by the runner package."""

    kind = "failed"


class ServiceUnavailable(RunnerError):
    """A service c2d needs (Docker engine, Redis, the API) does not answer."""

    kind = "unavailable"


class ImageError(RunnerError):
    """An environment image is missing or could not be built."""

    kind = "failed"


class UnknownEnvironment(RunnerError):
    """A job names an environment this host does not provide."""

    kind = "invalid"


class SandboxError(RunnerError):
    """The sandbox could not prepare, start, watch or clean up a job container."""

    kind = "failed"


class OutputRejected(RunnerError):
    """A job's outputs broke the collection policy; the job fails with this reason."""

    kind = "failed"


class ApiError(RunnerError):
    """The c2d API answered with an error; `kind`, `message` and `status` are the server's.

    The class default is "failed"; every instance carries the kind the server sent, so the CLI
    maps it to an exit code exactly as it maps local errors.
    """

    kind = "failed"

    def __init__(self, kind: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status


class IntegrityError(RunnerError):
    """Downloaded bytes, a receipt or a public key do not match what they must be."""

    kind = "failed"


class ClientConfigError(RunnerError):
    """The client has no usable server URL or token, or its config file cannot be used."""

    kind = "invalid"


class SettingsError(RunnerError):
    """A `C2D_` setting or a command-line override of one has a value c2d cannot use."""

    kind = "invalid"


class ArtifactError(RunnerError):
    """The artifact store could not keep or hand out an artifact."""

    kind = "failed"


class ArtifactTooLarge(ArtifactError):
    """An artifact is larger than the cap its caller set; nothing of it was kept."""

    kind = "too_large"


class ArtifactNotFound(ArtifactError):
    """No artifact with this digest is in the store."""

    kind = "not_found"


class MissingFile(RunnerError):
    """A file named on the command line (a key, a receipt, a job folder) does not exist."""

    kind = "not_found"


class NotReady(RunnerError):
    """The job is not in a state that allows this yet (for example fetch before release)."""

    kind = "conflict"


class SandboxSpecInvalid(SandboxError):
    """A sandbox spec asks for something the sandbox does not allow (a bad name, path or limit)."""

    kind = "invalid"


class NoToken(RunnerError):
    """A command needs an API token and none is configured."""

    kind = "unauthenticated"


class TryLater(RunnerError):
    """A worker cannot go on with a job right now (Docker down, the worker is stopping).

    The job keeps its state in the store; the Celery task maps this to ``self.retry()``, and the
    reconciler adopts or re-dispatches the job once its lease runs out.
    """

    kind = "unavailable"


class HomeNotInitialized(RunnerError):
    """The state folder has no database or ledger key yet."""

    kind = "invalid"


class HomeExists(RunnerError):
    """`c2d init` was pointed at a state folder that already holds a c2d installation."""

    kind = "conflict"


class ByoError(RunnerError):
    """A researcher's own image (a Dockerfile or a `docker save` archive) was not accepted.

    ``build_log`` carries what the build or load printed (capped), for the researcher and the
    owner; it is empty when nothing ran.
    """

    kind = "failed"

    def __init__(self, message: str, *, build_log: str = "") -> None:
        super().__init__(message)
        self.build_log = build_log


class ByoRefused(ByoError):
    """The image breaks the host's policy (a base it does not allow, a URL download, ...)."""

    kind = "not_allowed"


class ByoInvalid(ByoError):
    """The Dockerfile, build context or archive cannot be read as one (malformed input)."""

    kind = "invalid"


class ByoTooLarge(ByoError):
    """The context, archive or image is past one of the host's caps (size, layers)."""

    kind = "too_large"


class BuildFailed(ByoError):
    """The researcher's Dockerfile did not build; the message says which step and why."""

    kind = "failed"


class BuildTimedOut(BuildFailed):
    """The build ran past the host's build-time cap and was stopped."""

    kind = "failed"


class ImageGone(ByoError):
    """The image a job was pinned to is no longer on this host."""

    kind = "not_found"
