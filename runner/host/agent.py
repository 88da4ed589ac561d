"""``c2d host start``: a data host's agent, a Celery worker on its queue with its reconciler.

The agent loads the host's identity from its state folder (``runner.host.identity``; made by
``c2d host enroll``), consumes its queue ``c2d.NAME`` on the control plane's broker with a
thread pool of ``concurrency`` jobs, and runs the host's reconciler (``runner.host.reconciler``:
hello, outbox, reaping) in a thread. It only connects out: to the broker and to the API.
SIGTERM or Ctrl-C stops it warmly: running jobs are handed back (their containers keep running
and the next agent adopts them).
"""

from __future__ import annotations

import logging
import os
import socket
import warnings

from runner.context import setup_logging
from runner.host.engine import Engine
from runner.host.identity import HostIdentity, load_identity, save_roots, with_saved_roots
from runner.jsonlog import log_fields
from runner.livelog import LiveLogs
from runner.settings import Settings
from runner.transport import key_prefix

log = logging.getLogger(__name__)


def worker_name(host: str) -> str:
    """This process's name as a lease holder: data host, machine and process id."""
    return f"{host}@{socket.gethostname()}:{os.getpid()}"


def host_settings(settings: Settings, identity: HostIdentity) -> Settings:
    """``settings`` as the enrolled host's: its name, and its control plane's origin and
    installation id (the prefix of the broker's keys its queue lives under)."""
    update = {"data_host": identity.name}
    if identity.origin:
        update["origin"] = identity.origin
    if identity.installation:
        update["installation"] = identity.installation
    return settings.model_copy(update=update)


def run_agent(settings: Settings, concurrency: int = 1) -> int:
    """Run the data host at ``settings.home`` until stopped; return the exit code."""
    from celery.signals import worker_shutting_down

    from runner.host.context import open_host_context
    from runner.host.reconciler import Reconciler
    from runner.host.tasks import WorkerRuntime, worker_app

    setup_logging(settings.log_format)
    # The agent runs as root because the sandbox mounts each job's /outputs; Celery's warning
    # is about unpickling as root, and this app accepts JSON only.
    warnings.filterwarnings("ignore", message=".*superuser privileges.*")
    identity = load_identity(settings)
    settings = with_saved_roots(host_settings(settings, identity))
    save_roots(settings)
    if not settings.dataset_root_paths:
        log.warning(
            "no dataset roots are set, so no dataset can be registered here and none runs; set "
            "C2D_DATASET_ROOTS to the folders that hold datasets (absolute, comma-separated)"
        )
    # Its Redis keys are under its control plane's installation id (``host_settings``), where
    # the API reads them; the pipeline writes only the logs their datasets' policies let out.
    live = LiveLogs(settings.redis_url, key_prefix(settings))
    engine = Engine(settings.work_dir, live=live)
    ctx = open_host_context(settings, identity=identity, engine=engine)
    runtime = WorkerRuntime(ctx, worker_name(identity.name))
    app = worker_app(settings, runtime)
    reconciler = Reconciler(ctx, agent=runtime.worker)

    def stopping(**_: object) -> None:
        runtime.stop.set()

    worker_shutting_down.connect(stopping, weak=False)
    worker = app.Worker(
        hostname=f"c2d-{identity.name}-{os.getpid()}@{socket.gethostname()}",
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
    log.info(
        "data host %s: %s consuming %s",
        identity.name,
        runtime.worker,
        settings.queue,
        extra=log_fields(data_host=identity.name, event="agent.started"),
    )
    try:
        worker.start()
    finally:
        runtime.stop.set()
        reconciler.stop()
        worker_shutting_down.disconnect(stopping)
        ctx.close()
    return int(worker.exitcode or 0)
