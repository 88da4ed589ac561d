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
