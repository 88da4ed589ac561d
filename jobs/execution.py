"""The workers' state changes: claim with a lease and a fence, heartbeat, finish.

A claim moves an approved job to running under a lease that the worker extends by heartbeats.
Every claim increments the job's ``fence``; every later call of the worker carries it, so a
worker that lost its lease (cancelled, expired and reclaimed, finished by the reconciler) is
refused with ``LeaseLost`` and knows to stop. ``finish`` and ``fail_expired`` both need the
current fence and a running job, so exactly one ``job.finished`` entry is ever written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from jobs.attestations import outcome_statement
from jobs.digests import canonical_digest, outputs_digest
from jobs.errors import Conflict, DigestMismatch, InvalidRequest, LeaseLost
from jobs.host_records import Host
from jobs.models import Job, Outcome
from jobs.output_checks import failed, release_body
from jobs.service_core import ServiceCore, worker_actor
from jobs.states import JobState, check_transition

S = JobState


@dataclass(frozen=True)
class Claim:
    """A worker's hold on a running job: pass ``fence`` to heartbeat and finish."""

    job: Job
    fence: int


def _check_lease(worker: str, lease_s: float) -> None:
    if not worker or not worker.isprintable() or len(worker) > 200:
        raise InvalidRequest(f"worker name {worker!r} must be 1-200 printable characters")
    if not (math.isfinite(lease_s) and lease_s > 0):
        raise InvalidRequest(f"lease must be a positive number of seconds, got {lease_s}")


def _lost(job: Job, fence: int) -> LeaseLost | None:
    """Why a worker holding ``fence`` no longer holds ``job``, or ``None`` if it does."""
    if job.state is S.CANCELLED:
        return LeaseLost(f"job {job.id} was cancelled ({job.reason}); stop it", cancelled=True)
    if job.state is not S.RUNNING:
        return LeaseLost(f"job {job.id} is {job.state.value}, no longer running; stop it")
    if job.fence != fence:
        return LeaseLost(
            f"job {job.id} was claimed again by {job.lease_owner} (fence {job.fence}, yours "
            f"{fence}); stop it"
        )
    return None


def finished_body(
    state: JobState, worker: str | None, fence: int, outcome: Outcome
) -> dict[str, Any]:
    """The body of ``job.finished``: digests and counts, never what the job chose.

    Every signed-in user reads the ledger, and a run's reason, exit code, duration, output
    names, sizes and metrics are derived from the private data, so the entry holds the digest of
    the whole outcome, the digest and count of the outputs (``jobs.digests.outputs_digest``),
    the metrics' and the log's digests. A released job's researcher checks the outputs and
    metrics they are given against these; the owner, against the outcome they read.
    """
    return {
        "state": state.value,
        "worker": worker,
        "fence": fence,
        "ran": outcome.ran,
        "outcome_digest": canonical_digest(outcome.model_dump(mode="json")),
        "outputs": len(outcome.outputs),
        "outputs_digest": outputs_digest(o.model_dump() for o in outcome.outputs),
        "metrics_digest": canonical_digest(outcome.metrics),
        "log_digest": outcome.log_digest,
    }


class Execution(ServiceCore):
    """Claims, leases and results."""

    def claim(self, job_id: str, worker: str, lease_s: float) -> Claim:
        """Take an approved job (approved -> running), or adopt a running one whose lease ran out.

        Increments the fence. Entry ``job.started`` (or ``job.reclaimed`` on adoption, naming
        the previous worker). Raises ``NotFound``, ``InvalidTransition`` (not approved),
        ``Conflict`` (running under another live lease), ``InvalidRequest``.
        """
        _check_lease(worker, lease_s)
        with self._store.transaction() as conn:
            job = self._job(job_id)
            now = self._now()
            fence = job.fence + 1
            lease: dict[str, Any] = {
                "fence": fence,
                "attempts": job.attempts + 1,
                "lease_owner": worker,
                "lease_expires": now + lease_s,
                "updated": now,
            }
            if job.state is S.RUNNING:
                if job.lease_expires is not None and job.lease_expires > now:
                    raise Conflict(
                        f"job {job_id} is running on {job.lease_owner} (lease for "
                        f"{job.lease_expires - now:.0f} s more); not claimed twice"
                    )
                self._store.update_job(job_id, expect=S.RUNNING, at_fence=job.fence, **lease)
                body = {
                    "worker": worker,
                    "fence": fence,
                    "attempt": job.attempts + 1,
                    "previous_worker": job.lease_owner,
                    "previous_fence": job.fence,
                }
                self._record(conn, "job.reclaimed", worker_actor(worker), job_id, body)
            else:
                check_transition(job.state, S.RUNNING, job_id)
                self._store.update_job(
                    job_id,
                    expect=S.APPROVED,
                    to=S.RUNNING,
                    at_fence=job.fence,
                    started=now,
                    **lease,
                )
                body = {"worker": worker, "fence": fence, "attempt": job.attempts + 1}
                self._record(conn, "job.started", worker_actor(worker), job_id, body)
            return Claim(job=self._job(job_id), fence=fence)

    def heartbeat(self, job_id: str, worker: str, fence: int, lease_s: float) -> Job:
        """Extend the lease to now + ``lease_s``. No ledger entry (not a state change).

        Raises ``LeaseLost`` (cancelled, finished or claimed again: stop the container),
        ``NotFound``, ``InvalidRequest``.
        """
        _check_lease(worker, lease_s)
        with self._store.transaction():
            job = self._job(job_id)
            lost = _lost(job, fence)
            if lost is not None:
                raise lost
            if job.lease_owner != worker:
                raise LeaseLost(f"job {job_id} is held by {job.lease_owner}, not {worker}")
            now = self._now()
            self._store.update_job(
                job_id, expect=S.RUNNING, at_fence=fence, lease_expires=now + lease_s, updated=now
            )
            return self._job(job_id)

    @staticmethod
    def check_bound(
        job: Job, code_digest: str, image_id: str, dataset_digest: str, params_digest: str
    ) -> None:
        """Refuse to run unless all four digests equal those the approval bound.

        Raises ``DigestMismatch`` (kind ``failed``) listing each that changed, or ``Conflict``
        if the job has no approval.
        """
        approval = job.approval
        if approval is None:
            raise Conflict(f"job {job.id} was never approved; it cannot run")
        pairs = [
            ("code", approval.code_digest, code_digest),
            ("image", approval.image_id, image_id),
            ("dataset", approval.dataset_digest, dataset_digest),
            ("params", approval.params_digest, params_digest),
        ]
        changed = [(what, exp, act) for what, exp, act in pairs if exp != act]
        if changed:
            raise DigestMismatch(changed)

    def finish(
        self,
        job_id: str,
        fence: int,
        outcome: Outcome,
        *,
        host: Host | None = None,
        signature: str | None = None,
    ) -> Job:
        """Record how the run ended: running -> succeeded or failed, exactly once.

        Entry ``job.finished`` (``finished_body``: digests and counts only). If it succeeded,
        the dataset's policy releases on success and every output check passed, also released
        in the same transaction (``job.released``, ``by_policy: true``, with the checks'
        results); a failed check holds the outputs for the owner, as on a reviewed dataset.
        A data host's finish carries ``host`` and its ``signature`` over the outcome statement
        (``c2d.host.outcome/1``: host, job, fence, outcome digest), checked against the host's
        enrolled key and written into the entry. Raises ``LeaseLost`` (stale fence, cancelled
        or already finished), ``NotFound``, ``NotAllowed`` (a signature not the host's).
        """
        if host is not None:
            statement = outcome_statement(host.name, job_id, fence, outcome)
            self.check_host_signature(host, statement, signature or "")
        with self._store.transaction() as conn:
            job = self._job(job_id)
            lost = _lost(job, fence)
            if lost is not None:
                raise lost
            to = S.SUCCEEDED if outcome.succeeded else S.FAILED
            now = self._now()
            self._store.update_job(
                job_id,
                expect=S.RUNNING,
                to=to,
                at_fence=fence,
                outcome=outcome,
                reason=outcome.reason,
                lease_expires=None,
                finished=now,
                updated=now,
            )
            body = finished_body(to, job.lease_owner, fence, outcome)
            if host is not None:
                body |= {
                    "host": host.name,
                    "host_key": host.fingerprint,
                    "host_signature": signature,
                }
            actor = worker_actor(job.lease_owner or "unknown")
            self._record(conn, "job.finished", actor, job_id, body)
            policy = self._dataset(job.dataset).policy
            if to is S.SUCCEEDED and not policy.review_outputs and not failed(outcome.checks):
                self._store.update_job(job_id, expect=S.SUCCEEDED, to=S.RELEASED, updated=now)
                released = {"by_policy": True} | release_body(outcome.checks)
                self._record(conn, "job.released", actor, job_id, released)
            return self._job(job_id)

    def fail_expired(
        self, job_id: str, fence: int, reason: str, *, actor: str = "reconciler"
    ) -> Job:
        """Fail a running job whose lease ran out and whose container cannot be adopted.

        Entry ``job.finished`` with ``lease_expired: true``. Raises ``LeaseLost`` (stale
        fence or not running), ``Conflict`` (the lease is still live), ``NotFound``.
        """
        if not reason.strip():
            raise InvalidRequest("say why the job failed")
        with self._store.transaction() as conn:
            job = self._job(job_id)
            lost = _lost(job, fence)
            if lost is not None:
                raise lost
            now = self._now()
            if job.lease_expires is not None and job.lease_expires > now:
                raise Conflict(
                    f"job {job_id}'s lease on {job.lease_owner} is still live; not failing it"
                )
            outcome = Outcome(
                succeeded=False,
                exit_code=None,
                reason=reason,
                duration_s=max(0.0, now - (job.started or now)),
            )
            self._store.update_job(
                job_id,
                expect=S.RUNNING,
                to=S.FAILED,
                at_fence=fence,
                outcome=outcome,
                reason=reason,
                lease_expires=None,
                finished=now,
                updated=now,
            )
            body = {
                **finished_body(S.FAILED, job.lease_owner, fence, outcome),
                "lease_expired": True,
            }
            self._record(conn, "job.finished", actor, job_id, body)
            return self._job(job_id)

    def dispatchable(self) -> list[Job]:
        """Approved jobs no worker has claimed yet, oldest first (for the reconciler)."""
        return self._store.list_jobs(state=S.APPROVED)

    def expired_leases(self, now: float | None = None) -> list[Job]:
        """Running jobs whose lease ran out by ``now`` (default: the service clock)."""
        return self._store.expired_leases(self._now() if now is None else now)
