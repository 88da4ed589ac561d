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
