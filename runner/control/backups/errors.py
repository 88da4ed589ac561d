"""What goes wrong with a backup, as the operator should hear it."""

from __future__ import annotations

from ledger.kinds import ErrorKind
from runner.errors import RunnerError


class BackupError(RunnerError):
    """A backup could not be written, or a backup is damaged or does not verify."""

    kind = ErrorKind.FAILED


class TargetExists(BackupError):
    """The folder a backup or a restore would write holds something already; nothing was
    written to it."""

    kind = ErrorKind.CONFLICT


class NotABackup(BackupError):
    """The folder given to `c2d restore` has no manifest c2d can read."""

    kind = ErrorKind.INVALID
