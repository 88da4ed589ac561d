"""The worker's pipeline for one job, as a plain function the Celery task only calls.

``execute_job(ctx, job_id, worker)``:

1. **Claim** the job (compare-and-set, a lease, a new fence). A claim that conflicts (another
   worker holds a live lease, or the job is no longer approved) means this message is a
   duplicate: do nothing (``SKIPPED``); the task acks it. A job of another data host (or of
   another installation) is never claimed here: its message is logged as misrouted and acked.
2. **Heartbeat**: while the worker holds the job a thread renews the lease.
3. **Preflight** (``runner.host.preflight``): re-hash the bundle, resolve the image, re-hash the
   dataset, hash the params, and refuse on any difference from the approval; the container
   never starts and the job finishes as failed with the reason.
4. **Run** through the executor's idempotent steps: prepare, start (adopting the container
   ``c2d-job-<id>`` if an earlier worker started it), wait in short slices. Between slices:
   a lost lease stops the pipeline (a cancelled job's container is killed; a job claimed
   again is left to its new worker); a stopping worker hands the job back (``TryLater``),
   leaving the container running for the next worker to adopt.
5. **Collect** outputs into the host's own artifact store, keep the log there, **finish**
   (``runner.host.delivery``: the outcome signed with the host's key; exactly one
   ``job.finished``, guarded by the fence; kept in the outbox while the control plane does not
   answer), then **clean up** the container and folders. Outputs leave the host on release.

A job claimed again whose outcome waits in this host's outbox (its lease ran out while the
control plane was away) is finished from the outbox; one claimed again with no container to
adopt fails (its code may have run): a job never runs twice.

``ServiceUnavailable`` (the Docker engine does not answer) becomes ``TryLater``: the job stays
running under a lease that runs out, and the reconciler or the retried task adopts it.
"""

from __future__ import annotations

import logging
import threading
from enum import StrEnum

from pydantic import ValidationError

from jobs.errors import Conflict, JobsError, LeaseLost, NotFound
from jobs.execution import Claim
from jobs.models import MAX_REASON_CHARS, Outcome, OutputFile
from jobs.output_checks import OutputChecks
from ledger import LedgerError
from runner.errors import RunnerError, SandboxError, ServiceUnavailable, TryLater
from runner.host.context import HostContext as Context
from runner.host.delivery import deliver, kept_outcome
from runner.host.heartbeat import Heartbeat, beat_interval
from runner.host.output_checks import check_outputs
from runner.host.preflight import prepare_run, remove_code
from runner.host.sandbox.interface import RunResult, State, watch
from runner.installation import log_misrouted
from runner.jsonlog import log_fields

log = logging.getLogger(__name__)

POLL_S = 2.0
"""How long one wait slice lasts: the longest a cancellation or a shutdown waits to be seen."""


class Ending(StrEnum):
    """How ``execute_job`` left the job."""

    SKIPPED = "skipped"  # not claimed: a duplicate message, or the job moved on
    FINISHED = "finished"  # this worker wrote its job.finished
    CANCELLED = "cancelled"  # cancelled while running; its container was removed
    LOST = "lost"  # another worker claimed it again, or it was finished elsewhere
    KEPT = "kept"  # it ran; its outcome waits in the outbox for the control plane


def execute_job(
    ctx: Context,
    job_id: str,
    worker: str,
    *,
    stop: threading.Event | None = None,
    poll_s: float = POLL_S,
) -> Ending:
    """Run job ``job_id`` on this host as ``worker``; see the module docstring for the steps.

    Raises ``TryLater`` when the job must be continued later (Docker down, ``stop`` set).
    """
    try:
        # The control plane shows a host only its own jobs: another host's is "not found".
        claim = ctx.control.claim(job_id, worker, ctx.settings.lease_s)
    except NotFound:
        log_misrouted(log, ctx.settings, "a run", job_id)
        return Ending.SKIPPED
    except Conflict as exc:
        log.info(
            "job %s not claimed by %s: %s",
            job_id,
            worker,
            exc,
            extra=log_fields(job_id=job_id, data_host=ctx.name, event="job.not_claimed"),
        )
        return Ending.SKIPPED
    except ServiceUnavailable as exc:
        raise TryLater(f"job {job_id}: the control plane does not answer: {exc}") from exc
    log.info(
        "job %s claimed by %s (fence %d)",
        job_id,
        worker,
        claim.fence,
        extra=log_fields(job_id=job_id, data_host=ctx.name, event="job.claimed"),
    )
    kept = kept_outcome(ctx, job_id)
    if kept is not None:
        log.info(
            "job %s: finished from the outbox (it ran while the control plane was away)", job_id
        )
        return _finish(ctx, claim, kept)
    if claim.job.attempts > 1 and _container_gone(ctx, job_id):
        # Claimed again after its worker was lost, with nothing to adopt: the code may have
        # run on the data, so it does not run a second time.
        reason = "its previous worker was lost and its container is gone; submit the job again"
        return _finish(ctx, claim, _failed(reason, ran=True))
    settings = ctx.settings
    interval = beat_interval(settings.lease_s, settings.heartbeat_s)
    with Heartbeat(ctx.control, job_id, worker, claim.fence, settings.lease_s, interval) as beat:
        return _run_claimed(ctx, claim, beat, stop or threading.Event(), poll_s)


def _container_gone(ctx: Context, job_id: str) -> bool:
    try:
        return ctx.executor().status(job_id) not in (State.RUNNING, State.EXITED)
    except ServiceUnavailable as exc:
        raise TryLater(f"job {job_id}: the Docker engine does not answer: {exc}") from exc


def _run_claimed(
    ctx: Context, claim: Claim, beat: Heartbeat, stop: threading.Event, poll_s: float
) -> Ending:
    job = claim.job
    try:
        spec = prepare_run(ctx, job)
        checks = ctx.control.dataset(job.dataset).policy.checks
    except ServiceUnavailable as exc:
        raise TryLater(f"job {job.id} cannot be checked now: {exc}") from exc
    except (JobsError, RunnerError, LedgerError) as exc:
        log.warning(
            "job %s refused before start: %s",
            job.id,
            exc,
            extra=log_fields(job_id=job.id, data_host=ctx.name, event="job.refused"),
        )
        return _finish(ctx, claim, _failed(str(exc), ran=False))

    def hold() -> None:
        if beat.lost is not None:
            raise beat.lost

    stopping = (
        f"the worker is stopping; job {job.id} keeps running and the next worker adopts its "
        "container"
    )
    try:
        result = watch(
            ctx.executor(),
            spec,
            ctx.artifacts,
            stop=stop,
            stopping=stopping,
            poll_s=poll_s,
            hold=hold,
        )
    except LeaseLost as exc:
        return _lost(ctx, job.id, exc)
    except ServiceUnavailable as exc:
        raise TryLater(f"job {job.id} cannot be watched now: {exc}") from exc
    except SandboxError as exc:
        log.warning(
            "job %s: sandbox failed: %s",
            job.id,
            exc,
            extra=log_fields(job_id=job.id, data_host=ctx.name, event="job.sandbox_failed"),
        )
        return _finish(ctx, claim, _failed(f"the sandbox failed: {exc}", ran=True))
    return _finish(ctx, claim, outcome_of(ctx, result, checks))


def _bounded(reason: str) -> str:
    return reason if len(reason) <= MAX_REASON_CHARS else reason[: MAX_REASON_CHARS - 3] + "..."


def _failed(reason: str, *, ran: bool) -> Outcome:
    """A failed outcome; ``ran`` says whether the job's code may have run on the data."""
    return Outcome(
        succeeded=False, exit_code=None, reason=_bounded(reason), duration_s=0.0, ran=ran
    )


def outcome_of(ctx: Context, result: RunResult, checks: OutputChecks | None = None) -> Outcome:
    """The ``Outcome`` the service records for a run, with the log kept in the artifact store
    and, for a succeeded run, the results of the dataset's output ``checks`` on what this host
    collected (``runner.host.output_checks``)."""
    log_digest, _ = ctx.artifacts.put_bytes(result.log)
    try:
        outputs = [OutputFile(name=o.name, sha256=o.sha256, bytes=o.bytes) for o in result.outputs]
        metrics = dict(result.metrics or {})
        results = (
            check_outputs(ctx.artifacts, outputs, metrics, checks)
            if checks is not None and result.succeeded
            else []
        )
        return Outcome(
            succeeded=result.succeeded,
            exit_code=result.exit_code,
            oom=result.oom,
            timed_out=result.timed_out,
            reason=_bounded(result.reason or ("succeeded" if result.succeeded else "failed")),
            duration_s=max(result.duration_s, 0.0),
            outputs=outputs,
            metrics=metrics,
            log_digest=log_digest,
            log_truncated=result.log_truncated,
            checks=results,
        )
    except ValidationError as exc:
        problems = "; ".join(str(e["msg"]) for e in exc.errors())
        return Outcome(
            succeeded=False,
            exit_code=result.exit_code,
            oom=result.oom,
            timed_out=result.timed_out,
            reason=_bounded(f"the run's result cannot be recorded: {problems}"),
            duration_s=max(result.duration_s, 0.0),
            log_digest=log_digest,
            log_truncated=result.log_truncated,
        )


def _lost(ctx: Context, job_id: str, lost: LeaseLost) -> Ending:
    if lost.cancelled:
        _clean(ctx, job_id)
        return Ending.CANCELLED
    # Claimed again (its new worker adopts the container) or finished elsewhere: hands off.
    return Ending.LOST


def _finish(ctx: Context, claim: Claim, outcome: Outcome) -> Ending:
    job_id = claim.job.id
    try:
        finished = deliver(ctx, job_id, claim.fence, outcome)
    except LeaseLost as exc:
        log.info("job %s: not finished by this worker: %s", job_id, exc)
        return _lost(ctx, job_id, exc)
    log.info(
        "job %s finished: %s",
        job_id,
        outcome.reason,
        extra=log_fields(job_id=job_id, data_host=ctx.name, event="job.finished"),
    )
    _clean(ctx, job_id)
    return Ending.FINISHED if finished is not None else Ending.KEPT


def _clean(ctx: Context, job_id: str) -> None:
    """Remove the job's container and folders; a failure here is the reaper's to retry."""
    try:
        ctx.executor().cleanup(job_id)
    except Exception as exc:
        log.warning("job %s: cleanup left something behind (the reaper retries): %s", job_id, exc)
    remove_code(ctx, job_id)
