"""The reconciler: makes the store, the queue and the Docker engine of this data host agree.

It runs every ``Settings.reconcile_s`` in every worker process (a thread beside Celery) and
is safe with several running at once: every action either goes through a compare-and-set in
the store, or is marked in Redis (one send per job per grace period), or tolerates "already
gone". One pass (``Reconciler.run_once``), for the jobs of this data host only:

1. **Lost messages**: an approved job that is not on the queue and was approved (or last sent)
   more than ``Settings.redispatch_s`` ago is sent again. A duplicate is harmless: the second
   claim fails its compare-and-set.
2. **Expired leases**: a running job whose worker stopped renewing its lease. If its container
   is still on this host (running or exited), the job is sent again and the next worker adopts
   the container; if there is none (never started, or removed), or the job was already tried
   ``MAX_ATTEMPTS`` times, it fails with a reason (exactly one ``job.finished``: the fence
   guards it). A job is never started a second time from scratch.
3. **Lost dry runs** (when ``Settings.dryrun`` is on): a pending job with no dry run kept,
   whose dry-run lease ran out (its worker died) or that no worker leased within
   ``Settings.redispatch_s`` of its submission, and with no dry-run message on the queue, gets
   its dry-run message again. The next worker adopts the container the dead one left.
4. **Reaping**: containers labelled ``c2d.job`` of this installation's jobs that are no
   longer live (or overdue past their deadline), their folders, and leftover code folders;
   then jobs' own images (``runner.host.images``) untouched for ``Settings.byo_retention_s``, never
   one a pending, approved or running job binds, nor an allowed base.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from jobs.errors import Conflict, JobsError
from jobs.models import Job
from jobs.states import JobState
from runner.context import Context
from runner.errors import ImageError, RunnerError
from runner.host.dryrun import dryrun_id
from runner.host.engine import byo_policy_from
from runner.host.reaper import reap
from runner.host.sandbox.interface import State
from runner.transport import TASK_DRYRUN, TASK_RUN

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
"""Claims of one job after which an expired lease fails it instead of re-dispatching it."""

STALE_EXTRACTION_S = 3600.0

LIVE = frozenset({JobState.APPROVED, JobState.RUNNING})


class Sender(Protocol):
    """What the reconciler needs of ``runner.transport.Dispatcher``."""

    def send(self, job_id: str, host: str, ttl: float = 0.0, *, task: str = TASK_RUN) -> bool: ...

    def queued(self, host: str) -> set[str]: ...


@dataclass
class Pass:
    """What one pass did, by job id (for logs and tests)."""

    sent: list[str] = field(default_factory=list)
    dryruns_sent: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    reaped: list[str] = field(default_factory=list)
    images_removed: list[str] = field(default_factory=list)


class Reconciler:
    """One data host's reconciler; ``run_once`` is one pass, ``start`` runs passes in a thread."""

    def __init__(
        self,
        ctx: Context,
        sender: Sender,
        *,
        clock: Callable[[], float] = time.time,
        reap_containers: bool = True,
    ) -> None:
        self.ctx = ctx
        self.sender = sender
        self.clock = clock
        self.reap_containers = reap_containers
        self.host = ctx.settings.data_host
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _mine(self, job: Job) -> bool:
        return self.ctx.service.dataset_of(job).policy.host == self.host

    def run_once(self) -> Pass:
        """One pass of the three steps; an error in one job is logged and the pass goes on."""
        done = Pass()
        self._resend_lost(done)
        self._resolve_expired(done)
        if self.ctx.settings.dryrun:
            self._resend_lost_dryruns(done)
        if self.reap_containers:
            self._reap(done)
        return done

    def _resend_lost(self, done: Pass) -> None:
        grace = self.ctx.settings.redispatch_s
        waiting = [j for j in self.ctx.service.dispatchable() if self._mine(j)]
        if not waiting:
            return
        queued = self.sender.queued(self.host)
        now = self.clock()
        for job in waiting:
            approved_at = job.approval.time if job.approval else job.updated
            if job.id in queued or now - approved_at < grace:
                continue
            if self.sender.send(job.id, self.host, ttl=grace):
                log.info("job %s was approved but not queued; sent again", job.id)
                done.sent.append(job.id)

    def _resend_lost_dryruns(self, done: Pass) -> None:
        grace = self.ctx.settings.redispatch_s
        lost = [j for j in self.ctx.service.lost_dryruns(grace) if self._mine(j)]
        if not lost:
            return
        queued = self.sender.queued(self.host)
        for job in lost:
            if f"dryrun-{job.id}" in queued:
                continue
            if self.sender.send(job.id, self.host, ttl=grace, task=TASK_DRYRUN):
                log.info("job %s: its dry run has no live worker; sent again", job.id)
                done.dryruns_sent.append(job.id)

    def _resolve_expired(self, done: Pass) -> None:
        for job in self.ctx.service.expired_leases(self.clock()):
            if not self._mine(job):
                continue
            try:
                self._resolve(job, done)
            except (JobsError, RunnerError) as exc:
                log.warning("job %s: expired lease not resolved this pass: %s", job.id, exc)

    def _resolve(self, job: Job, done: Pass) -> None:
        state = self.ctx.executor().status(job.id)
        adoptable = state in (State.RUNNING, State.EXITED)
        if adoptable and job.attempts < MAX_ATTEMPTS:
            if self.sender.send(job.id, self.host, ttl=self.ctx.settings.redispatch_s):
                log.info("job %s: worker %s lost; sent for adoption", job.id, job.lease_owner)
                done.adopted.append(job.id)
            return
        if not adoptable:
            reason = (
                f"the worker running it ({job.lease_owner}) was lost and its container is gone; "
                "submit the job again"
            )
        else:
            reason = (
                f"gave up after {job.attempts} attempts to run it; its workers kept being lost; "
                "ask the operator to check the workers' logs"
            )
            self.ctx.executor().cleanup(job.id)
        try:
            self.ctx.service.fail_expired(job.id, job.fence, reason)
        except Conflict as exc:  # another reconciler or a worker got there first
            log.info("job %s: not failed here: %s", job.id, exc)
            return
        log.warning("job %s failed: %s", job.id, reason)
        done.failed.append(job.id)

    def _live(self, job_id: str) -> bool:
        dryrun = job_id.endswith(dryrun_id(""))
        job = self.ctx.store.get_job(job_id.removesuffix(dryrun_id("")) if dryrun else job_id)
        # Containers of job ids this store does not know belong to another installation
        # (or a test) on the same engine: not ours to remove. A dry run's container lives
        # while its job may still be approved or run (a dry run kept late is still shown).
        if job is None:
            return True
        return job.state in (LIVE | {JobState.PENDING} if dryrun else LIVE)

    def _reap(self, done: Pass) -> None:
        try:
            client = self.ctx.docker()
            done.reaped = reap(
                client, self._live, self.clock(), work_root=self.ctx.settings.work_dir
            )
        except Exception as exc:
            log.warning("reaper pass failed (retried next pass): %s", exc)
        try:
            done.images_removed = self._remove_old_images()
        except Exception as exc:
            log.warning("image clean-up failed (retried next pass): %s", exc)
        code_root = self.ctx.settings.code_dir
        now = self.clock()
        for folder in code_root.iterdir() if code_root.is_dir() else []:
            if folder.name.startswith("."):
                # A half-done extraction whose worker died; live ones take seconds.
                if now - folder.stat().st_mtime > STALE_EXTRACTION_S:
                    shutil.rmtree(folder, ignore_errors=True)
                continue
            job = self.ctx.store.get_job(folder.name)
            if job is not None and job.state not in LIVE:
                shutil.rmtree(folder, ignore_errors=True)

    def _remove_old_images(self) -> list[str]:
        """Jobs' own images past their retention, never one a pending, approved or running
        job binds, nor an allowed base."""
        from runner.host.images import remove_unused_images
        from runner.host.images.policy import resolve_bases

        client = self.ctx.docker()
        in_use = self.ctx.service.images_in_use()
        # No allowed base on this host: nothing to protect beside the jobs' images.
        with contextlib.suppress(ImageError):
            policy = byo_policy_from(self.ctx.settings)
            in_use |= {b.image_id for b in resolve_bases(client, policy)}
        return remove_unused_images(
            client, in_use, older_than_s=self.ctx.settings.byo_retention_s, now=self.clock()
        )

    def loop(self) -> None:
        """Run passes every ``reconcile_s`` until ``stop``; never dies of one bad pass."""
        while not self._stop.is_set():
            try:
                result = self.run_once()
                if result.reaped:
                    log.info("reaped %s", ", ".join(result.reaped))
            except Exception:
                log.exception("reconciler pass failed; retrying next pass")
            self._stop.wait(self.ctx.settings.reconcile_s)

    def start(self) -> None:
        """Run ``loop`` in a daemon thread."""
        self._thread = threading.Thread(target=self.loop, name="c2d-reconciler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the loop to stop and wait for the current pass to end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
