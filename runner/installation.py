"""Which installation this is: a random id that `c2d init` records in the state folder.

Every Redis key c2d writes (its queues, unacknowledged messages, send marks, live logs) lies
under a prefix naming the installation (``runner.transport.key_prefix``). The ledger's origin
cannot be that name: by default it is ``c2d/<hostname>``, the same for two installations on one
machine, which then took each other's messages. The id is 64 random bits, so it is unique by
construction, whatever the operator named the ledger.

The control plane reads it from ``installation`` in its state folder (``with_installation``);
a data host learns it at enrollment and keeps it in its ``host.json``
(``runner.host.identity``). A state folder made before ids existed has none, and its keys stay
under its origin as they were, so the hosts it enrolled keep finding their queues.
"""

from __future__ import annotations

import logging
import re
import secrets

from runner.errors import SettingsError
from runner.settings import Settings

_ID = re.compile(r"[0-9a-f]{16,64}")
MAX_ID_SHOWN = 64


def check_installation_id(value: str) -> str:
    """``value`` if it is an installation id (16 to 64 lowercase hex digits), else raise
    ``SettingsError``: it becomes part of every Redis key."""
    if not _ID.fullmatch(value):
        raise SettingsError(
            f"{value[:80]!r} is not an installation id (16 to 64 lowercase hex digits); "
            "`c2d init` makes one, a data host learns it at `c2d host enroll`"
        )
    return value


def record_installation(settings: Settings) -> str:
    """Make a new installation id and record it in ``settings.home``; return it."""
    made = secrets.token_hex(8)
    settings.installation_path.write_text(made + "\n")
    return made


def with_installation(settings: Settings) -> Settings:
    """``settings`` with the installation id recorded in its state folder, if any.

    ``C2D_INSTALLATION`` may name it too, but only the same one: raises ``SettingsError`` when
    it differs from the recorded id, rather than leave the control plane's messages where its
    data hosts never look.
    """
    try:
        recorded = check_installation_id(settings.installation_path.read_text().strip())
    except FileNotFoundError:
        if settings.installation:
            check_installation_id(settings.installation)
        return settings
    if settings.installation and settings.installation != recorded:
        raise SettingsError(
            f"C2D_INSTALLATION is {settings.installation[:80]!r} but {settings.home} is "
            f"installation {recorded}; unset C2D_INSTALLATION"
        )
    return settings.model_copy(update={"installation": recorded})


def key_prefix(settings: Settings) -> str:
    """The prefix of every Redis key of this installation: ``c2d:<installation id>:``.

    A state folder made before installation ids existed keeps its keys under its ledger origin,
    where its data hosts look for them.
    """
    if settings.installation:
        return f"c2d:{settings.installation}:"
    return f"{settings.origin}:"


def log_misrouted(logger: logging.Logger, settings: Settings, what: str, job_id: str) -> None:
    """Say that a message about ``job_id`` reached ``settings.queue`` though this host's
    control plane knows no such job of it: another installation's, or another host's.

    The id came off the queue, so it is shown bounded (the log's formatter escapes it).
    """
    job_id = job_id[:MAX_ID_SHOWN]
    logger.warning(
        "misrouted message: %s of job %s arrived on queue %s (Redis keys %s*), but this data "
        "host's control plane has no such job for it; acknowledged and dropped. Does another "
        "installation share this Redis database under the same key prefix?",
        what,
        job_id,
        settings.queue,
        key_prefix(settings),
        extra={"job_id": job_id, "data_host": settings.data_host, "event": "message.misrouted"},
    )
