"""What an operator watches, read from the store in one snapshot: counts, ages and durations.

``read_stats`` runs a handful of read-only queries inside one read transaction, so every number
in a ``StoreStats`` describes the same moment. It is what ``/metrics`` reports
(``runner.control.metrics``): computed from the store each time, never counted in a process, so
a restarted API reports the truth at once and two API processes agree.

Nothing here reads what a run produced beyond the sizes of its outputs; the numbers are for the
operator (an admin), who governs every dataset anyway (``jobs.access``).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from jobs.states import JobState
from ledger.storage import read_state

DRYRUN_OUTCOMES = ("ok", "failed", "timed_out", "oom")
"""How a dry run ended, as ``/metrics`` labels it."""


@dataclass(frozen=True)
class Lease:
    """A running job's lease: who holds it, until when, and since when the job runs."""

    job_id: str
    host: str
    worker: str
    expires: float | None
    started: float | None


@dataclass(frozen=True)
class HostBeat:
    """A data host as its last hello left it (``None``: it never said hello since enrolling)."""

    host: str
    enrolled: bool
    last_seen: float | None
    engine_ok: bool | None


@dataclass
class StoreStats:
    """One snapshot of the store (see the module docstring). Keys ``(dataset, host)`` name a
    dataset and the data host it lives on."""

    jobs: dict[tuple[str, str, str], int] = field(default_factory=dict)
    """(dataset, host, state) -> how many jobs are in that state, every state of every
    dataset present (zero included)."""
    oldest: dict[JobState, float | None] = field(default_factory=dict)
    """PENDING -> when the oldest pending job was submitted, APPROVED -> when the oldest job
    still waiting for its data host was approved; ``None`` when there is none."""
    dispatch_s: list[tuple[str, float]] = field(default_factory=list)
    """(host, seconds from approval to the host's claim) of every job a host claimed."""
    run_s: list[tuple[str, float]] = field(default_factory=list)
    """(host, seconds from claim to the end) of every job that started and ended."""
    dryruns: dict[tuple[str, str, str], int] = field(default_factory=dict)
    """(dataset, host, outcome in ``DRYRUN_OUTCOMES``) -> jobs whose dry run ended so."""
    output_bytes: dict[tuple[str, str, str], int] = field(default_factory=dict)
    """(dataset, host, state) -> bytes of the outputs the runs of jobs now in that state made."""
    leases: list[Lease] = field(default_factory=list)
    hosts: list[HostBeat] = field(default_factory=list)
    ledger_entries: int = 0


def _dryrun_outcome(ok: object, timed_out: object, oom: object) -> str:
    if ok:
        return "ok"
    if timed_out:
        return "timed_out"
    return "oom" if oom else "failed"


def read_stats(conn: sqlite3.Connection) -> StoreStats:
    """One ``StoreStats`` from ``conn`` (a connection of its own: this opens and ends a read
    transaction on it)."""
    stats = StoreStats()
    conn.execute("BEGIN")
    try:
        _read_jobs(conn, stats)
        _read_dryruns_and_outputs(conn, stats)
        _read_leases_and_hosts(conn, stats)
        stats.ledger_entries = read_state(conn)[0]
    finally:
        conn.execute("COMMIT")
    return stats


def _read_jobs(conn: sqlite3.Connection, stats: StoreStats) -> None:
    for name, host in conn.execute("SELECT name, host FROM datasets"):
        for state in JobState:
            stats.jobs[(name, host, state.value)] = 0
    for dataset, host, state, count in conn.execute(
        "SELECT j.dataset, d.host, j.state, COUNT(*) FROM jobs j"
        " JOIN datasets d ON d.name = j.dataset GROUP BY j.dataset, d.host, j.state"
    ):
        stats.jobs[(dataset, host, state)] = int(count)
    pending = conn.execute("SELECT MIN(created) FROM jobs WHERE state = 'pending'").fetchone()
    approved = conn.execute(
        "SELECT MIN(a.time) FROM jobs j JOIN approvals a ON a.job_id = j.id"
        " WHERE j.state = 'approved'"
    ).fetchone()
    stats.oldest = {JobState.PENDING: pending[0], JobState.APPROVED: approved[0]}
    stats.dispatch_s = [
        (str(host), max(0.0, float(seconds)))
        for host, seconds in conn.execute(
            "SELECT d.host, j.started - a.time FROM jobs j"
            " JOIN approvals a ON a.job_id = j.id JOIN datasets d ON d.name = j.dataset"
            " WHERE j.started IS NOT NULL"
        )
    ]
    stats.run_s = [
        (str(host), max(0.0, float(seconds)))
        for host, seconds in conn.execute(
            "SELECT d.host, j.finished - j.started FROM jobs j"
            " JOIN datasets d ON d.name = j.dataset"
            " WHERE j.started IS NOT NULL AND j.finished IS NOT NULL"
        )
    ]


def _read_dryruns_and_outputs(conn: sqlite3.Connection, stats: StoreStats) -> None:
    for name, host in conn.execute("SELECT name, host FROM datasets"):
        for outcome in DRYRUN_OUTCOMES:
            stats.dryruns[(name, host, outcome)] = 0
    for dataset, host, ok, timed_out, oom in conn.execute(
        "SELECT j.dataset, d.host, json_extract(r.record, '$.ok'),"
        " json_extract(r.record, '$.timed_out'), json_extract(r.record, '$.oom')"
        " FROM job_dryruns r JOIN jobs j ON j.id = r.job_id"
        " JOIN datasets d ON d.name = j.dataset"
    ):
        key = (dataset, host, _dryrun_outcome(ok, timed_out, oom))
        stats.dryruns[key] = stats.dryruns.get(key, 0) + 1
    for dataset, host, state, total in conn.execute(
        "SELECT j.dataset, d.host, j.state, SUM(json_extract(o.value, '$.bytes'))"
        " FROM jobs j JOIN datasets d ON d.name = j.dataset,"
        " json_each(j.outcome, '$.outputs') o"
        " WHERE j.outcome IS NOT NULL GROUP BY j.dataset, d.host, j.state"
    ):
        stats.output_bytes[(dataset, host, state)] = int(total or 0)


def _read_leases_and_hosts(conn: sqlite3.Connection, stats: StoreStats) -> None:
    stats.leases = [
        Lease(job_id, host, owner or "", expires, started)
        for job_id, host, owner, expires, started in conn.execute(
            "SELECT j.id, d.host, j.lease_owner, j.lease_expires, j.started FROM jobs j"
            " JOIN datasets d ON d.name = j.dataset WHERE j.state = 'running' ORDER BY j.id"
        )
    ]
    stats.hosts = [
        HostBeat(name, public_key is not None, last_seen, None if ok is None else bool(ok))
        for name, public_key, last_seen, ok in conn.execute(
            "SELECT name, public_key, last_seen, engine_ok FROM hosts ORDER BY name"
        )
    ]
