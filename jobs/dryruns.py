"""Recording and reading pre-approval dry runs (``jobs.schema_records.DryRun``).

A dry run is not a state change: the job stays ``pending`` (or wherever the owner moved it
meanwhile) and nothing it produced leaves. It is still a fact worth keeping, so recording one is
a transaction with its ledger entry ``job.dryrun`` (subject: the job id; actor: the worker):

- for a dataset whose schema researchers may see, the entry has the outcome (ok, exit code,
  duration, how many outputs were declared, produced and missing), the mock data's digest,
  level, seed and row cap, and the digests of the whole result, the log and the metrics; no
  string the job chose (its reason, its file names) goes into the public log;
- for a hidden schema, the job's code ran on mock data shaped like columns nobody but the owner
  may know, so what it printed, named or measured could spell them out. The entry then has only
  the mock data's digest, level, seed and row cap, and the digest of the whole result, which
  the owner reads in review.
"""

from __future__ import annotations

from typing import Any

from jobs import access
from jobs.digests import canonical_digest
from jobs.models import Job, User
from jobs.schema_records import DryRun
from jobs.service_core import ServiceCore, worker_actor

WITHHELD = (
    "the dataset's schema is hidden, so the dry run's result stays with its owner "
    "(the job's output could spell out the columns)"
)


def ledger_body(dryrun: DryRun) -> dict[str, Any]:
    """The body of ``job.dryrun`` (see the module docstring for what a hidden schema keeps)."""
    mock = {
        "mock_digest": dryrun.mock_digest,
        "level": dryrun.level,
        "seed": dryrun.seed,
        "max_rows": dryrun.max_rows,
    }
    if dryrun.withheld:
        return {**mock, "withheld": True, "result_digest": canonical_digest(dryrun.model_dump())}
    return {
        **mock,
        "ok": dryrun.ok,
        "exit_code": dryrun.exit_code,
        "oom": dryrun.oom,
        "timed_out": dryrun.timed_out,
        "duration_s": dryrun.duration_s,
        "declared": len(dryrun.declared),
        "produced": len(dryrun.produced),
        "missing": len(dryrun.missing),
        "result_digest": canonical_digest(dryrun.model_dump()),
        "log_digest": dryrun.log_digest,
        "metrics_digest": canonical_digest(dryrun.metrics),
    }


def dryrun_view(dryrun: DryRun | None, *, full: bool) -> dict[str, Any] | None:
    """A dry run as the API shows it: whole to the owner (``full``), else a withheld one as
    a note only."""
    if dryrun is None:
        return None
    if dryrun.withheld and not full:
        return {"job_id": dryrun.job_id, "withheld": True, "note": WITHHELD}
    return {**dryrun.model_dump(mode="json"), "missing": dryrun.missing}


class DryRuns(ServiceCore):
    """The data host records dry runs; people read them as the dataset's policy allows."""

    def record_dryrun(self, dryrun: DryRun) -> DryRun:
        """Keep ``dryrun`` with its job and write ``job.dryrun``, in one transaction.

        The job's state is not touched. Raises ``NotFound`` (no such job) and ``Conflict``
        (the job already has a dry run: a redelivered message does not write twice).
        """
        with self._store.transaction() as conn:
            self._job(dryrun.job_id)
            self._store.insert_dryrun(dryrun)
            actor = worker_actor(dryrun.worker)
            self._record(conn, "job.dryrun", actor, dryrun.job_id, ledger_body(dryrun))
        return dryrun

    def lease_dryrun(self, job_id: str, worker: str, lease_s: float) -> bool:
        """Take or renew ``worker``'s lease on the job's dry run for ``lease_s`` seconds; False
        when another worker's lease still runs (that worker is doing it)."""
        now = self._clock()
        with self._store.transaction():
            return self._store.lease_dryrun(job_id, worker, now + lease_s, now)

    def lost_dryruns(self, grace_s: float) -> list[Job]:
        """Pending jobs whose dry run nobody is doing: its worker's lease ran out, or no worker
        took it within ``grace_s`` of the submission. The reconciler sends these again."""
        now = self._clock()
        return self._store.lost_dryruns(now, now - grace_s)

    def dryrun_of(self, job_id: str) -> DryRun | None:
        """The job's dry run, if recorded (for the data host and review; no permission check)."""
        return self._store.get_dryrun(job_id)

    def dryrun_for(self, actor: User, job_id: str) -> dict[str, Any] | None:
        """The job's dry run as ``actor`` may see it (``dryrun_view``); ``None`` if none yet.

        Raises ``NotFound`` (the actor cannot see the job).
        """
        job, dataset = self._visible(actor, job_id)
        return dryrun_view(self._store.get_dryrun(job.id), full=access.governs(actor, dataset))
