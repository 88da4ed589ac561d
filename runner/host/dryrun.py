"""The data host's pre-approval dry run: a pending job, in the same sandbox, on mock data.

``execute_dryrun(ctx, job_id, worker)`` is what the Celery task ``c2d.dryrun_job`` calls:

1. **Skip** a job that is no longer pending, belongs to another data host, already has a dry
   run (a redelivered message), or whose dry run another worker holds a live lease on. Dry runs
   never claim or move the job itself: the owner may approve, reject or the researcher cancel
   it meanwhile, and the state machine never knows. They lease the dry run instead
   (``Settings.lease_s``, renewed while it runs): when the worker dies, the reconciler sends it
   again once the lease runs out, and the next worker adopts the container the dead one left.
2. **Mock data** (``runner.host.mockdata``): made from the dataset's stored profile at the policy's
   level (``columns`` for a hidden schema), seed 0, at most ``Settings.dryrun_max_rows`` rows
   per table, with the owner's public columns. For a table within the cap these are the bytes a
   researcher's ``c2d dataset mock NAME`` writes, so both see the same digest.
3. **Code**: the stored bundle is re-hashed against the digest the job was submitted with and
   extracted into ``Settings.dryrun_dir``. This is the one place unapproved code reaches a data
   host's disk: it is mounted only beside mock data, and removed when the run ends.
4. **Run** the job's own sandbox spec (image, command, params, declared outputs, limits), with
   two differences: the dataset mounted at ``/data/NAME`` is the mock folder (the real folder
   is never mounted, read or hashed here), and the deadline is at most
   ``Settings.dryrun_timeout``. The container is ``c2d-job-<id>-dryrun``. Outputs go through
   the same collector into a throwaway artifact store that is deleted: nothing of a dry run
   leaves but its record.
5. **Record** ``Service.record_dryrun`` (ok or the reason, duration, outputs declared and
   produced, the log's tail and digest, the mock digest): ``job.dryrun`` in the ledger.

Docker not answering, or the worker stopping, raises ``TryLater`` (the task retries and the
dry run starts again); anything else that stops a dry run is recorded as its reason.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from jobs.bundle import extract
from jobs.digests import sha256_digest
from jobs.errors import Conflict, JobsError, NotFound
from jobs.models import Dataset, Job
from jobs.schema_records import LOG_TAIL_BYTES, DryRun
from jobs.schemas import mock_level
from jobs.states import JobState
from jobs.units import parse_duration
from ledger import LedgerError
from runner.artifacts import ArtifactStore
from runner.errors import RunnerError, SandboxError, ServiceUnavailable, TryLater
from runner.host.context import HostContext as Context
from runner.host.mockdata import ensure_mock
from runner.host.preflight import file_digest
from runner.host.sandbox.interface import Executor, RunResult, SandboxSpec, watch
from runner.host.sandbox.specs import Sandboxing, sandbox_spec
from runner.installation import log_misrouted
from runner.jsonlog import log_fields

log = logging.getLogger(__name__)

RECORDED = "recorded"
SKIPPED = "skipped"
MOCK_SEED = 0
POLL_S = 2.0
STALE_S = 3600.0


class TakenOver(Exception):
    """This worker's lease on a dry run ran out and another worker holds it now: that worker
    watches the container and records the result, so this one leaves both alone."""


def dryrun_id(job_id: str) -> str:
    """The sandbox id of a job's dry run (its container is ``c2d-job-<this>``)."""
    return f"{job_id}-dryrun"


def execute_dryrun(
    ctx: Context,
    job_id: str,
    worker: str,
    *,
    stop: threading.Event | None = None,
    poll_s: float = POLL_S,
) -> str:
    """Dry-run pending job ``job_id`` on this host; ``RECORDED`` or ``SKIPPED``.

    Raises ``TryLater`` when it must be tried again (Docker down, ``stop`` set).
    """
    service = ctx.control
    try:
        # The control plane shows a host only its own jobs: another host's is "not found".
        job = service.job(job_id)
    except NotFound:
        log_misrouted(log, ctx.settings, "a dry run", job_id)
        return SKIPPED
    except ServiceUnavailable as exc:
        raise TryLater(f"job {job_id}: the control plane does not answer: {exc}") from exc
    try:
        dataset = service.dataset(job.dataset)
    except NotFound as exc:
        log.info("job %s: no dry run: %s", job_id, exc)
        return SKIPPED
    except ServiceUnavailable as exc:
        raise TryLater(f"job {job_id}: the control plane does not answer: {exc}") from exc
    if job.state is not JobState.PENDING or service.dryrun_of(job_id) is not None:
        return SKIPPED
    facts: dict[str, Any] = {
        "job_id": job.id,
        "declared": list(job.spec.outputs),
        "level": mock_level(dataset.policy),
        "seed": MOCK_SEED,
        "max_rows": ctx.settings.dryrun_max_rows,
        "withheld": dataset.policy.schema_view == "hidden",
        "worker": worker,
    }
    lease_s = ctx.settings.lease_s
    if not service.lease_dryrun(job_id, worker, lease_s):
        log.info("job %s: another worker is dry-running it", job_id)
        return SKIPPED

    def renew() -> bool:
        return service.lease_dryrun(job_id, worker, lease_s)

    try:
        dryrun = _dry_run(ctx, job, dataset, facts, stop or threading.Event(), poll_s, renew)
    except TakenOver as exc:
        log.warning("job %s: %s", job_id, exc)
        return SKIPPED
    except (ServiceUnavailable, TryLater) as exc:
        service.lease_dryrun(job_id, worker, 0.0)  # let the retry, on any worker, take it now
        if isinstance(exc, TryLater):
            raise
        raise TryLater(f"job {job_id}: the dry run cannot start now: {exc}") from exc
    except (JobsError, RunnerError, LedgerError) as exc:
        log.warning("job %s: dry run failed before it ran: %s", job_id, exc)
        dryrun = DryRun(**facts, ok=False, reason=f"not run: {exc}", time=time.time())
    try:
        service.record_dryrun(dryrun)
    except Conflict:
        log.info("job %s: its dry run was recorded by another worker", job_id)
        return SKIPPED
    log.info(
        "job %s: dry run %s: %s",
        job_id,
        "ok" if dryrun.ok else "failed",
        dryrun.reason,
        extra=log_fields(job_id=job_id, data_host=ctx.name, event="dryrun.recorded"),
    )
    return RECORDED


def _dry_run(
    ctx: Context,
    job: Job,
    dataset: Dataset,
    facts: dict[str, Any],
    stop: threading.Event,
    poll_s: float,
    renew: Callable[[], bool],
) -> DryRun:
    settings = ctx.settings
    record = ctx.registry.profile(dataset.name)
    if record is None or record.profile is None or record.digest != dataset.digest:
        raise NotFound(
            f"dataset {dataset.name!r} has no profile on this data host for its current data; "
            f"its owner registers it again here (`c2d dataset add {dataset.name} PATH`)"
        )
    profile = record.profile
    mock = ensure_mock(
        settings.mocks_dir,
        dataset,
        profile,
        level=facts["level"],
        seed=MOCK_SEED,
        max_rows=settings.dryrun_max_rows,
    )
    facts["mock_digest"] = mock.result.digest
    _prune_scratch(settings.dryrun_dir)
    scratch = settings.dryrun_dir / f"{job.id}.{secrets.token_hex(4)}"
    scratch.mkdir(parents=True, mode=0o700)
    try:
        code = _extract_code(ctx, job, scratch / "code")
        cap = parse_duration(settings.dryrun_timeout)
        spec = sandbox_spec(
            job.spec,
            sandbox_id=dryrun_id(job.id),
            image_id=job.image_id,
            code_dir=code,
            datasets={dataset.name: mock.data},
            sandboxing=Sandboxing.of(settings),
            max_metrics=dataset.policy.max_metrics,
            timeout_cap_s=cap,
        )
        outputs = ArtifactStore(scratch / "outputs")
        result = _run(ctx.executor(), spec, outputs, stop, poll_s, renew)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    capped = spec.limits.timeout_s < job.spec.resources.timeout
    return _record_of(result, facts, dryrun_cap=cap if capped else None)


def _prune_scratch(root: Path) -> None:
    """Remove what dry runs of crashed workers left (an hour old: no dry run lasts that long)."""
    now = time.time()
    for folder in root.iterdir() if root.is_dir() else []:
        with contextlib.suppress(FileNotFoundError):
            if now - folder.stat().st_mtime > STALE_S:
                shutil.rmtree(folder, ignore_errors=True)


def _extract_code(ctx: Context, job: Job, dest: Path) -> Path:
    own = ctx.control.job_image(job.id)
    bundle_digest = job.code_digest if own is None else own.bundle_digest
    bundle = ctx.control.fetch_bundle(job, bundle_digest, ctx.artifacts)
    if file_digest(bundle) != bundle_digest:
        raise SandboxError(
            f"the stored code of job {job.id} no longer hashes to {bundle_digest}; tell the "
            "operator (the artifact store was changed)"
        )
    extract(bundle, dest, ctx.limits.max_bundle_files, ctx.limits.max_bundle_bytes)
    dest.chmod(0o755)
    return dest


def _run(
    executor: Executor,
    spec: SandboxSpec,
    store: ArtifactStore,
    stop: threading.Event,
    poll_s: float,
    renew: Callable[[], bool],
) -> RunResult:
    """Prepare, start (or adopt the container a lost worker left), wait (watching ``stop``,
    renewing the lease), collect; the container is removed unless another worker took over."""
    ours = True
    try:
        return watch(
            executor,
            spec,
            store,
            stop=stop,
            stopping=f"the worker is stopping; dry run {spec.job_id} starts again later",
            poll_s=poll_s,
            hold=lambda: _hold(renew, spec.job_id),
        )
    except TakenOver:
        ours = False
        raise
    finally:
        if ours:
            executor.cleanup(spec.job_id)


def _hold(renew: Callable[[], bool], sandbox_id: str) -> None:
    """Renew the lease before the container is touched and after every wait: a worker that
    hung past its lease finds another one in charge and leaves the container to it."""
    if not renew():
        raise TakenOver(f"dry run {sandbox_id} was taken over by another worker")


def _record_of(result: RunResult, facts: dict[str, Any], dryrun_cap: int | None) -> DryRun:
    reason = result.reason or ("exited with code 0" if result.succeeded else "failed")
    if result.timed_out and dryrun_cap is not None:
        reason += " (the dry-run limit on this host; the job itself may take longer)"
    tail = result.log[-LOG_TAIL_BYTES:].decode("utf-8", errors="replace")
    run = {
        **facts,
        "ok": result.succeeded,
        "reason": reason,
        "exit_code": result.exit_code,
        "oom": result.oom,
        "timed_out": result.timed_out,
        "duration_s": max(result.duration_s, 0.0),
        "produced": [o.name for o in result.outputs],
        "ignored": list(result.ignored),
        "log_tail": tail,
        "log_truncated": result.log_truncated or len(result.log) > LOG_TAIL_BYTES,
        "log_digest": sha256_digest(result.log),
        "time": time.time(),
    }
    try:
        return DryRun(**run, metrics=dict(result.metrics or {}))
    except ValidationError as exc:
        problems = "; ".join(str(e["msg"]) for e in exc.errors())
        return DryRun(**{**run, "ok": False, "reason": f"the result is not valid: {problems}"})
