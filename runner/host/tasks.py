"""The data host's Celery tasks: transport only, each hands a job id to a plain function.

``c2d.run_job`` runs an approved job (``runner.host.pipeline.execute_job``); ``c2d.dryrun_job``
runs a pending one against mock data before review (``runner.host.dryrun.execute_dryrun``);
``c2d.prepare`` makes a submission's own image (``runner.host.prepare``); ``c2d.upload`` sends
what the control plane asked for: released outputs, a log, outputs to review
(``runner.host.delivery.upload``). A
task that must be continued later (the worker is stopping, the engine does not answer) is
retried just after the job's lease runs out, and the next worker adopts its container.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from runner.errors import TryLater
from runner.host.context import HostContext as Context
from runner.settings import Settings
from runner.transport import (
    TASK_DRYRUN,
    TASK_PREPARE,
    TASK_RUN,
    TASK_UPLOAD,
    C2DCelery,
    make_celery,
)

log = logging.getLogger(__name__)

DRYRUN_RETRIES = 10


class WorkerRuntime:
    """What the tasks need in a worker process: the context, its name, a stop signal."""

    def __init__(self, ctx: Context, worker: str) -> None:
        self.ctx = ctx
        self.worker = worker
        self.stop = threading.Event()

    @property
    def retry_after_s(self) -> float:
        """When a handed-back job is tried again: just after its lease has run out."""
        return self.ctx.settings.lease_s + 1.0

    def run(self, job_id: str) -> str:
        """Run one job (``runner.host.pipeline.execute_job``); return how it ended."""
        from runner.host.pipeline import execute_job

        return execute_job(self.ctx, job_id, self.worker, stop=self.stop).value

    def upload_outputs(self, job_id: str) -> str:
        return self.upload(job_id, "outputs")

    def upload_log(self, job_id: str) -> str:
        return self.upload(job_id, "log")

    def upload_review(self, job_id: str) -> str:
        return self.upload(job_id, "review")

    def prepare(self, prep_id: str) -> str:
        """Make a submission's own image (``runner.host.prepare``)."""
        from runner.host.prepare import prepare

        return prepare(self.ctx, prep_id)

    def upload(self, job_id: str, what: str = "outputs") -> str:
        """Send what the control plane asked for (``runner.host.delivery.upload``)."""
        from runner.host.delivery import upload

        return upload(self.ctx, job_id, what)

    def dryrun(self, job_id: str) -> str:
        """Dry-run a pending job on mock data (``runner.host.dryrun.execute_dryrun``)."""
        from runner.host.dryrun import execute_dryrun

        return execute_dryrun(self.ctx, job_id, self.worker, stop=self.stop)


def _hand_over(task: Any, app: C2DCelery, job_id: object, what: str) -> str:
    """Transport only: give the job id to the runtime's ``what`` ("run", "dryrun",
    "upload_outputs", "upload_log"); a
    malformed message is dropped, a job handed back (``TryLater``) is retried after its lease."""
    runtime = app.runtime
    if runtime is None:
        raise RuntimeError("this process has no worker runtime; start it with `c2d worker`")
    if not isinstance(job_id, str):
        log.error("dropping a malformed %s message: job id %r", what, job_id)
        return "skipped"
    try:
        return str(getattr(runtime, what)(job_id))
    except TryLater as exc:
        log.info("job %s handed back (%s): %s", job_id, what, exc)
        raise task.retry(exc=exc, countdown=runtime.retry_after_s) from exc


def worker_app(settings: Settings, runtime: WorkerRuntime) -> C2DCelery:
    """The Celery app of a data host's worker: the shared settings, its runtime, its tasks."""
    app = make_celery(settings)
    app.runtime = runtime

    @app.task(name=TASK_RUN, bind=True, max_retries=None)
    def run_job(self: Any, job_id: str) -> str:
        """Hand an approved job's id to the job pipeline."""
        return _hand_over(self, app, job_id, "run")

    @app.task(name=TASK_UPLOAD, bind=True, max_retries=DRYRUN_RETRIES)
    def upload_job(self: Any, job_id: str, what: str = "outputs") -> str:
        """Upload a released job's outputs, or a log its owner asked for."""
        if what not in ("outputs", "log", "review"):
            log.error("dropping an upload message for %r", what)
            return "skipped"
        return _hand_over(self, app, job_id, "upload_" + what)

    @app.task(name=TASK_PREPARE, bind=True, max_retries=DRYRUN_RETRIES)
    def prepare_image(self: Any, prep_id: str) -> str:
        """Build or load a submission's own image while its submission waits."""
        return _hand_over(self, app, prep_id, "prepare")

    @app.task(name=TASK_DRYRUN, bind=True, max_retries=DRYRUN_RETRIES)
    def dryrun_job(self: Any, job_id: str) -> str:
        """Hand a pending job's id to the dry-run pipeline."""
        return _hand_over(self, app, job_id, "dryrun")

    return app
