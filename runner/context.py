"""Everything a control plane process works with, built from ``Settings`` in one place.

The API server and its reconciler open one ``Context``: the store and the ledger on the one
database file, the ``Service`` over them, the store of released artifacts (and, apart, the
outputs an owner asked to review), the installation's ``Limits``. A data host opens its own
(``runner.host.context``). ``setup_logging`` is how every long-running process logs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from jobs.limits import Limits
from jobs.safe_text import escape
from jobs.service import Service
from jobs.signed_actions import SignaturePolicy
from jobs.store import Store
from jobs.units import parse_duration, parse_size
from ledger import Ledger
from runner.artifacts import ArtifactStore
from runner.errors import HomeNotInitialized
from runner.installation import with_installation
from runner.settings import Settings


def limits_from(settings: Settings) -> Limits:
    """The host's limits on any job, from the settings' human sizes and durations."""
    bundle = parse_size(settings.max_bundle)
    return Limits(
        max_cpus=settings.max_cpus,
        max_memory=parse_size(settings.max_memory),
        max_timeout=parse_duration(settings.max_timeout),
        max_outputs=parse_size(settings.max_outputs),
        max_bundle_bytes=bundle,
    )


def check_home(settings: Settings) -> None:
    """Raise ``HomeNotInitialized`` unless ``c2d init`` has made ``settings.home``."""
    if not (settings.db_path.is_file() and settings.key_path.is_file()):
        raise HomeNotInitialized(
            f"{settings.home} holds no c2d installation (no {settings.db_path.name} or "
            f"{settings.key_path.name}); run `c2d init` first, or set C2D_HOME to the right folder"
        )


@dataclass
class Context:
    """The control plane's handles on its installation; share it between threads, ``close`` it
    last. It holds no Docker engine: jobs, dry runs and image builds happen on data hosts
    (``runner.host.context.HostContext``)."""

    settings: Settings
    ledger: Ledger
    store: Store
    service: Service
    artifacts: ArtifactStore
    review: ArtifactStore
    limits: Limits

    def close(self) -> None:
        """Close the database connections."""
        self.store.close()
        self.ledger.close()


def open_context(settings: Settings, *, clock: Callable[[], float] | None = None) -> Context:
    """Open the control plane at ``settings.home`` (which ``c2d init`` must have made)."""
    check_home(settings)
    settings = with_installation(settings)
    ledger = Ledger(settings.db_path, settings.key_path, settings.origin)
    store = Store(settings.db_path)
    limits = limits_from(settings)
    policy = SignaturePolicy(settings.signatures)
    service = (
        Service(store, ledger, limits=limits, signatures=policy)
        if clock is None
        else Service(store, ledger, clock=clock, limits=limits, signatures=policy)
    )
    for folder in (settings.work_dir, settings.uploads_dir):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return Context(
        settings=settings,
        ledger=ledger,
        store=store,
        service=service,
        artifacts=ArtifactStore(settings.artifacts_dir),
        review=ArtifactStore(settings.review_dir),
        limits=limits,
    )


class SafeFormatter(logging.Formatter):
    """Log lines quote job-controlled text (reasons, names, errors); like the CLI, they show
    its control and invisible characters escaped, so a job cannot redraw the operator's
    terminal under `c2d up`. Line breaks stay (tracebacks)."""

    def format(self, record: logging.LogRecord) -> str:
        return escape(super().format(record), multiline=True)


def setup_logging(log_format: str = "text") -> None:
    """Log INFO and above to stderr: readable lines through ``SafeFormatter``, or with
    ``log_format="json"`` (``C2D_LOG_FORMAT``) one JSON object per line
    (``runner.jsonlog.JsonFormatter``)."""
    handler = logging.StreamHandler()
    if log_format == "json":
        from runner.jsonlog import JsonFormatter

        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(SafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    # A data host's agent calls the control plane every few seconds (hello, images in use,
    # heartbeats): httpx's line per request would bury what happened; errors still show.
    logging.getLogger("httpx").setLevel(logging.WARNING)
