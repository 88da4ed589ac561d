"""``c2d worker``: a data host's agent, a Celery worker on its queue with the reconciler beside it.

``run_worker`` consumes this data host's queue with a thread pool of ``concurrency`` jobs, and
runs the reconciler (``runner.host.reconciler``) in a thread. SIGTERM or Ctrl-C stops it warmly:
running jobs are handed back (their containers keep running and the next worker adopts them).
"""

from __future__ import annotations

import logging
import os
import socket
import warnings

from runner.context import open_context, setup_logging
from runner.host.engine import Engine
from runner.livelog import LiveLogs
from runner.settings import Settings
from runner.transport import key_prefix

log = logging.getLogger(__name__)


def worker_name(settings: Settings) -> str:
    """This process's name as a lease holder: data host, machine and process id."""
    return f"{settings.data_host}@{socket.gethostname()}:{os.getpid()}"


def run_worker(settings: Settings, concurrency: int = 1) -> int:
    """Run a Celery worker and the reconciler for this data host; return the exit code."""
    from celery.signals import worker_shutting_down

    from runner.host.reconciler import Reconciler
    from runner.host.tasks import WorkerRuntime, worker_app
    from runner.transport import Dispatcher

    setup_logging()
    # The worker runs as root because the sandbox mounts each job's /outputs; Celery's warning
    # is about unpickling as root, and this app accepts JSON only.
    warnings.filterwarnings("ignore", message=".*superuser privileges.*")
    live = LiveLogs(settings.redis_url, key_prefix(settings))
    ctx = open_context(settings, engine=Engine(settings.work_dir, live=live))
    runtime = WorkerRuntime(ctx, worker_name(settings))
    app = worker_app(settings, runtime)
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
