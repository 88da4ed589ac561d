"""What a data host sends the control plane after a run: its signed outcome, then, on release,
the outputs; and a log when the owner asks for it.

``deliver`` signs the outcome statement (``jobs.attestations.outcome_statement``) with the
host's key and finishes the job. When the control plane does not answer, the outcome is kept
in the registry's outbox and ``flush`` sends it later (the agent calls it every few seconds);
a job whose lease ran out meanwhile is sent back to this host by the control plane's
reconciler, claimed again, and finished from the outbox under its new fence. An outcome is
sent, never run again: the container and its outputs are already gone or collected.

Outputs stay in the host's own artifact store until released: at once when the dataset's
policy releases on success (the finish answers ``released``), else when the owner releases
and the control plane asks (``upload``, the Celery task ``c2d.upload``). The control plane
checks every file against the digests of the outcome the host signed.
"""

from __future__ import annotations

import logging
from typing import Any

from jobs.attestations import outcome_statement
from jobs.errors import JobsError, LeaseLost, NotFound
from jobs.models import Job, Outcome
from runner.errors import RunnerError, ServiceUnavailable
from runner.host.context import HostContext
from runner.host.port import Finished
from runner.installation import log_misrouted

log = logging.getLogger(__name__)


def deliver(ctx: HostContext, job_id: str, fence: int, outcome: Outcome) -> Finished | None:
    """Finish ``job_id`` with ``outcome`` under ``fence``, signed; ``None`` when the control
    plane did not answer (the outcome waits in the outbox). Uploads released outputs.

    Raises ``LeaseLost`` (cancelled, finished elsewhere, claimed again).
    """
    statement = outcome_statement(ctx.name, job_id, fence, outcome)
    signature = ctx.identity.sign(statement)
    try:
        finished = ctx.control.finish(job_id, fence, outcome, signature)
    except ServiceUnavailable as exc:
        log.warning("job %s: the control plane does not answer; outcome kept: %s", job_id, exc)
        payload: dict[str, Any] = {"fence": fence, "outcome": outcome.model_dump(mode="json")}
        ctx.registry.keep(job_id, payload)
        return None
    ctx.registry.delivered(job_id)
    if finished.released:
        upload_outputs(ctx, finished.job)
    return finished


def kept_outcome(ctx: HostContext, job_id: str) -> Outcome | None:
    """The outcome of ``job_id`` waiting in the outbox, if any."""
    kept = ctx.registry.kept(job_id).get(job_id)
    return Outcome.model_validate(kept["outcome"]) if kept else None


def flush(ctx: HostContext) -> int:
    """Send every kept outcome (each under the fence it was kept with); return how many went."""
    sent = 0
    for job_id, kept in ctx.registry.kept().items():
        outcome = Outcome.model_validate(kept["outcome"])
        try:
            if deliver(ctx, job_id, int(kept["fence"]), outcome) is not None:
                sent += 1
        except LeaseLost as exc:
            if exc.cancelled or "no longer running" in str(exc):
                ctx.registry.delivered(job_id)  # nothing left to say about this job
            # Claimed again: its new claim finishes it from the outbox.
            log.info("job %s: kept outcome not sent under its old fence: %s", job_id, exc)
        except (JobsError, RunnerError) as exc:
            log.warning("job %s: kept outcome not sent this time: %s", job_id, exc)
    return sent


def upload_outputs(ctx: HostContext, job: Job) -> int:
    """Upload a released job's outputs that the outcome names; return how many."""
    outputs = job.outcome.outputs if job.outcome else []
    for output in outputs:
        ctx.control.upload(job.id, "output", output.sha256, ctx.artifacts.path(output.sha256))
    return len(outputs)


def upload(ctx: HostContext, job_id: str, what: str) -> str:
    """Answer the control plane's request (task ``c2d.upload``): ``outputs`` of a released job,
    the ``log`` of a finished one for those who may read it, or outputs its owner asked to
    ``review`` before release (the control plane keeps those apart, for the owner)."""
    try:
        job = ctx.control.job(job_id)
    except NotFound:
        log_misrouted(log, ctx.settings, f"an upload ({what})", job_id)
        return "skipped"
    if what == "outputs":
        return f"uploaded {upload_outputs(ctx, job)} outputs"
    if what == "review" and job.outcome is not None:
        for output in job.outcome.outputs:
            ctx.control.upload(job_id, "review", output.sha256, ctx.artifacts.path(output.sha256))
        return f"uploaded {len(job.outcome.outputs)} outputs to review"
    digest = job.outcome.log_digest if job.outcome else None
    if what == "log" and digest is not None and ctx.artifacts.has(digest):
        ctx.control.upload(job_id, "log", digest, ctx.artifacts.path(digest))
        return "uploaded the log"
    return "nothing to upload"
