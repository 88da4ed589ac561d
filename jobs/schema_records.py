"""What the store keeps for developing against unseen data: dataset profiles and dry runs.

Two records, each in its own table (migration 3), both for the owner's eyes first:

- ``ProfileRecord``: the full profile of a dataset (``jobs.profile``), made when it was
  registered. Researchers never read this row; they get ``DatasetProfile.view`` of it.
- ``DryRun``: how a pending job ran against the dataset's mock data on its data host, before
  anyone approved it. One per job.

``SchemaRecords`` is the part of ``jobs.store.Store`` that reads and writes them.
"""

from __future__ import annotations

import sqlite3
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from jobs.digests import Digest
from jobs.errors import Conflict
from jobs.fields import FROZEN, SCHEMA_VERSION
from jobs.profile import DatasetProfile, Level

LOG_TAIL_BYTES = 4096
"""How much of a dry run's log is kept with the job for review (the end, where errors are)."""


class ProfileRecord(BaseModel):
    """A dataset's profile as made at registration; ``profile`` is ``None`` when none could be
    made, and ``problem`` then says why (for example Parquet without pyarrow)."""

    model_config = FROZEN

    schema_version: Literal[1] = SCHEMA_VERSION
    digest: Digest
    profile: DatasetProfile | None = None
    problem: str | None = None
    schema_digest: Digest | None = None


class DryRun(BaseModel):
    """One pre-approval dry run of a job on mock data (never the real data).

    ``declared`` are the job's output names and globs (``metrics.json`` is always collected
    too), ``produced`` the outputs the collector accepted, ``ignored`` files written but not
    declared. ``log_tail`` is the end of the log; ``log_truncated`` says it is not all of it.
    ``mock_digest``
    is the dataset digest of the mock folder (``None`` when no mock could be made, and then
    ``ok`` is false). ``withheld``: the dataset's schema is hidden, so this result is for the
    owner only; researchers and the public ledger get a summary without anything the job printed
    or named.
    """

    model_config = FROZEN

    schema_version: Literal[1] = SCHEMA_VERSION
    job_id: str
    ok: bool
    reason: str = Field(min_length=1)
    exit_code: int | None = None
    oom: bool = False
    timed_out: bool = False
    duration_s: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0
    declared: list[str] = Field(default_factory=list)
    produced: list[str] = Field(default_factory=list)
    ignored: list[str] = Field(default_factory=list)
    metrics: dict[str, float] = Field(default_factory=dict)
    log_tail: str = ""
    log_truncated: bool = False
    log_digest: Digest | None = None
    mock_digest: Digest | None = None
    level: Level | None = None
    seed: int = Field(default=0, ge=0)
    max_rows: int | None = Field(default=None, ge=0)
    withheld: bool = False
    worker: str
    time: float

    @property
    def missing(self) -> list[str]:
        """Declared literal names (not globs) that the run did not leave."""
        literal = [d for d in self.declared if not set(d) & set("*?[")]
        return [d for d in literal if d not in self.produced]


class SchemaRecords:
    """Store methods for ``dataset_profiles`` and ``job_dryruns`` (mixed into ``Store``)."""

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        raise NotImplementedError  # provided by Store

    def _write(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        raise NotImplementedError  # provided by Store

    def put_profile(self, name: str, record: ProfileRecord) -> None:
        """Insert or replace dataset ``name``'s profile (inside the registration's transaction)."""
        self._write(
            "INSERT INTO dataset_profiles (name, record) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET record = excluded.record",
            (name, record.model_dump_json(exclude_none=True)),
        )

    def get_profile(self, name: str) -> ProfileRecord | None:
        """Dataset ``name``'s profile record; ``None`` if it was registered before profiles."""
        rows = self._read("SELECT record FROM dataset_profiles WHERE name = ?", (name,))
        return ProfileRecord.model_validate_json(rows[0][0]) if rows else None

    def insert_dryrun(self, dryrun: DryRun) -> None:
        """Record a job's dry run and drop its lease; ``Conflict`` if it already has one (a
        redelivered task)."""
        try:
            self._write(
                "INSERT INTO job_dryruns (job_id, record, time) VALUES (?, ?, ?)",
                (dryrun.job_id, dryrun.model_dump_json(), dryrun.time),
            )
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"job {dryrun.job_id} already has a dry run") from exc
        self._write("DELETE FROM dryrun_leases WHERE job_id = ?", (dryrun.job_id,))

    def lease_dryrun(self, job_id: str, worker: str, expires: float, now: float) -> bool:
        """Take or renew ``worker``'s lease on ``job_id``'s dry run until ``expires``.

        False when another worker holds a lease that has not run out at ``now``, or when the
        job's dry run is already kept (a late worker then has nothing left to do).
        """
        cursor = self._write(
            "INSERT INTO dryrun_leases (job_id, worker, expires)"
            " SELECT ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM job_dryruns WHERE job_id = ?)"
            " ON CONFLICT (job_id) DO UPDATE SET worker = excluded.worker,"
            " expires = excluded.expires"
            " WHERE dryrun_leases.worker = excluded.worker OR dryrun_leases.expires <= ?",
            (job_id, worker, expires, job_id, now),
        )
        return cursor.rowcount == 1

    def get_dryrun(self, job_id: str) -> DryRun | None:
        """The dry run of ``job_id``, if one was recorded."""
        rows = self._read("SELECT record FROM job_dryruns WHERE job_id = ?", (job_id,))
        return DryRun.model_validate_json(rows[0][0]) if rows else None
