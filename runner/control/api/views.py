"""How the API shows the job domain's records: the JSON shapes of the v1 contract.

Times become RFC 3339 UTC strings; a dataset's host path is never shown (researchers must not
learn where the data lives, and the contract does not need it); a job's lease bookkeeping stays
inside. See /work/notes/api.md for the shapes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jobs.host_records import Host
from jobs.models import METRICS_FILE, Approval, Dataset, Job, Outcome, User
from jobs.people_records import Account


def rfc3339(when: float | None) -> str | None:
    """Unix seconds -> ``2024-05-01T12:00:00.123456Z`` (``None`` stays ``None``)."""
    if when is None:
        return None
    stamp = datetime.fromtimestamp(when, UTC).isoformat(timespec="microseconds")
    return stamp.replace("+00:00", "Z")


def user_view(user: User) -> dict[str, Any]:
    """``{"name", "role"}``."""
    return {"name": user.name, "role": user.role.value}


def account_view(account: Account) -> dict[str, Any]:
    """A user as admins list them: role, when added, whether (when, by whom) revoked, and the
    fingerprints of their unrevoked signing keys."""
    return {
        "name": account.name,
        "role": account.role.value,
        "created": rfc3339(account.created),
        "revoked": rfc3339(account.revoked),
        "revoked_by": account.revoked_by,
        "key_fingerprints": list(account.key_fingerprints),
    }


def host_view(host: Host, running: list[str]) -> dict[str, Any]:
    """A data host: its key's fingerprint (``null`` until enrolled), when it last spoke (and
    whether its engine answered then), its environments and running jobs; never a
    credential."""
    return {
        "name": host.name,
        "fingerprint": host.fingerprint,
        "public_key": host.public_key,
        "added_by": host.added_by,
        "created": rfc3339(host.created),
        "enrolled": rfc3339(host.enrolled),
        "last_seen": rfc3339(host.last_seen),
        "agent": host.agent,
        "engine_ok": host.engine_ok,
        "environments": {k: v.model_dump(mode="json") for k, v in host.environments.items()},
        "running": running,
    }


def dataset_view(dataset: Dataset) -> dict[str, Any]:
    """A dataset without its host path."""
    return {
        "name": dataset.name,
        "owner": dataset.owner,
        "digest": dataset.digest,
        "files": dataset.files,
        "bytes": dataset.bytes,
        "policy": dataset.policy.public_dump(),
        "created": rfc3339(dataset.registered),
    }


def approval_view(approval: Approval | None) -> dict[str, Any] | None:
    """Who approved, with which note, whether by policy, and when."""
    if approval is None:
        return None
    return {
        "approver": approval.approver,
        "note": approval.note,
        "by_policy": approval.by_policy,
        "time": rfc3339(approval.time),
    }


def outputs_view(outcome: Outcome | None) -> list[dict[str, Any]]:
    """``[{"name", "sha256", "bytes"}]`` of a job's collected outputs."""
    if outcome is None:
        return []
    return [{"name": o.name, "sha256": o.sha256, "bytes": o.bytes} for o in outcome.outputs]


def outcome_view(outcome: Outcome | None) -> dict[str, Any] | None:
    """How the run ended; ``metrics`` is ``None`` when the job left no metrics file."""
    if outcome is None:
        return None
    has_metrics = bool(outcome.metrics) or any(o.name == METRICS_FILE for o in outcome.outputs)
    return {
        "exit_code": outcome.exit_code,
        "oom": outcome.oom,
        "timed_out": outcome.timed_out,
        "reason": outcome.reason,
        "duration_s": outcome.duration_s,
        "outputs": outputs_view(outcome),
        "metrics": dict(outcome.metrics) if has_metrics else None,
        "log_truncated": outcome.log_truncated,
        "checks": [c.model_dump(mode="json") for c in outcome.checks],
    }


def job_view(job: Job) -> dict[str, Any]:
    """A job as the contract's ``Job``."""
    return {
        "id": job.id,
        "name": job.name,
        "researcher": job.researcher,
        "dataset": job.dataset,
        "state": job.state.value,
        "reason": job.reason,
        "code_digest": job.code_digest,
        "image_id": job.image_id,
        "dataset_digest": job.dataset_digest,
        "params_digest": job.params_digest,
        "spec": job.spec.model_dump(mode="json"),
        "created": rfc3339(job.created),
        "updated": rfc3339(job.updated),
        "started": rfc3339(job.started),
        "finished": rfc3339(job.finished),
        "approval": approval_view(job.approval),
        "outcome": outcome_view(job.outcome),
        # True while the run's result is the data owner's alone (outcome is then null).
        "withheld": job.withheld,
    }
