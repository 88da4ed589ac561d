"""The operator's processes: ``c2d init``, ``c2d server``, ``c2d worker`` and ``c2d up``.

Each takes the one ``Settings`` object the CLI built and runs in the foreground:

- ``init_home``: makes the state folder (mode 0700), the database, the ledger's signing key and
  an ``admin`` user; returns the admin token, which is shown once and stored only hashed.
  Refuses a folder that already holds an installation.
- ``serve``: the HTTP API under uvicorn on ``bind:port``.
- ``run_worker``: a Celery worker on this data host's queue (thread pool of ``concurrency``
  jobs) with the reconciler beside it in a thread. SIGTERM or Ctrl-C stops it warmly: running
  jobs are handed back (their containers keep running and the next worker adopts them).
- ``up``: the API (in a thread) and a worker (in the main thread) for a single machine;
  stopping the worker stops the API.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import warnings
from typing import TYPE_CHECKING

from jobs.safe_text import escape
from jobs.service import Service
from jobs.store import Store
from ledger import Ledger
from runner.context import limits_from, open_context
from runner.errors import HomeExists, ServiceUnavailable
from runner.settings import Settings

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger(__name__)

ADMIN = "admin"
SERVER_START_S = 30.0


class SafeFormatter(logging.Formatter):
    """Log lines quote job-controlled text (reasons, names, errors); like the CLI, they show
    its control and invisible characters escaped, so a job cannot redraw the operator's
    terminal under `c2d up`. Line breaks stay (tracebacks)."""

    def format(self, record: logging.LogRecord) -> str:
        return escape(super().format(record), multiline=True)


def _setup_logging() -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(SafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])


def init_home(settings: Settings) -> str:
    """Create the installation at ``settings.home``; return the admin token (shown once).

    Raises ``HomeExists`` if the folder already holds a database or a ledger key.
    """
    home = settings.home
    for existing in (settings.db_path, settings.key_path):
        if existing.exists():
            raise HomeExists(
                f"{home} already holds a c2d installation ({existing.name}); nothing was "
                "changed. Use it as it is, or pick another folder with --home / C2D_HOME"
            )
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    home.chmod(0o700)
    ledger = Ledger(settings.db_path, settings.key_path, settings.origin)
    store = Store(settings.db_path)
    try:
        service = Service(store, ledger, limits=limits_from(settings))
        _, token = service.add_user(ADMIN, "admin", actor="operator")
    finally:
        store.close()
        ledger.close()
    for folder in (
        settings.artifacts_dir,
        settings.work_dir,
        settings.code_dir,
        settings.uploads_dir,
    ):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return token


def _server(settings: Settings) -> uvicorn.Server:
    import uvicorn

    from runner.control.api import create_app

    config = uvicorn.Config(
        create_app(settings), host=settings.bind, port=settings.port, log_level="info"
    )
    return uvicorn.Server(config)


def _warn_without_roots(settings: Settings) -> None:
    if not settings.dataset_root_paths:
        log.warning(
            "no dataset roots are set, so no dataset can be registered and none runs; set "
            "C2D_DATASET_ROOTS to the folders that hold datasets (absolute, comma-separated)"
        )


def serve(settings: Settings) -> None:
    """Run the HTTP API in the foreground until SIGINT or SIGTERM."""
    _setup_logging()
    _warn_without_roots(settings)
    _server(settings).run()


def worker_name(settings: Settings) -> str:
    """This process's name as a lease holder: data host, machine and process id."""
    return f"{settings.data_host}@{socket.gethostname()}:{os.getpid()}"


def run_worker(settings: Settings, concurrency: int = 1) -> int:
    """Run a Celery worker and the reconciler for this data host; return the exit code."""
    from celery.signals import worker_shutting_down

    from runner.control.reconciler import Reconciler
    from runner.dispatch import Dispatcher, WorkerRuntime, make_celery

    _setup_logging()
    # The worker runs as root because the sandbox mounts each job's /outputs; Celery's warning
    # is about unpickling as root, and this app accepts JSON only.
    warnings.filterwarnings("ignore", message=".*superuser privileges.*")
    ctx = open_context(settings)
    app = make_celery(settings)
    runtime = WorkerRuntime(ctx, worker_name(settings))
    app.runtime = runtime
    dispatcher = Dispatcher.for_settings(settings, app)
    reconciler = Reconciler(ctx, dispatcher)

    def stopping(**_: object) -> None:
        runtime.stop.set()

    worker_shutting_down.connect(stopping, weak=False)
    worker = app.Worker(
        hostname=f"c2d-{settings.data_host}-{os.getpid()}@{socket.gethostname()}",
        queues=[settings.queue],
        pool="threads",
        concurrency=concurrency,
        loglevel="INFO",
        quiet=True,
        without_gossip=True,
        without_mingle=True,
        without_heartbeat=True,
    )
    reconciler.start()
    log.info("worker %s consuming %s", runtime.worker, settings.queue)
    try:
        worker.start()
    finally:
        runtime.stop.set()
        reconciler.stop()
        worker_shutting_down.disconnect(stopping)
        dispatcher.close()
        ctx.close()
    return int(worker.exitcode or 0)


def up(settings: Settings) -> int:
    """Run the API and one worker in this process, for a single machine."""
    _setup_logging()
    _warn_without_roots(settings)
    server = _server(settings)
    thread = threading.Thread(target=server.run, name="c2d-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + SERVER_START_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise ServiceUnavailable(
                f"the API did not start on {settings.bind}:{settings.port}; is the port taken? "
                "Pick another with --port"
            )
        time.sleep(0.05)
    try:
        return run_worker(settings, 1)
    finally:
        server.should_exit = True
        thread.join(SERVER_START_S)
