"""The job store: SQLite, in the same database file as the ledger.

One connection per ``Store``, opened in autocommit mode (``isolation_level=None``) with WAL,
``synchronous=FULL``, foreign keys and a busy timeout. Writes happen only inside
``transaction()``: ``BEGIN IMMEDIATE`` ... ``COMMIT`` (or ``ROLLBACK`` on any exception), so a
caller can append its ledger entry on the same connection and both commit or neither. A lock
serializes threads sharing the store; other processes serialize on SQLite's write lock.

The store does not check who may do what (``jobs.service`` does) but it does guard the job
state: ``update_job`` is the only writer of ``jobs.state``, checks the transition table, and
compares-and-sets with ``WHERE state = ?`` (and ``fence = ?`` when given); a trigger refuses any
other state change at the SQL level.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from jobs import migrations
from jobs.datasets import CachedHash
from jobs.errors import Conflict, StoreUnavailable
from jobs.host_records import HostRecords
from jobs.images import ImageRecord
from jobs.key_records import KeyRecords
from jobs.models import Approval, Dataset, DatasetPolicy, Job, Outcome, Role, TrustedCode, User
from jobs.people_records import PeopleRecords
from jobs.schema_records import SchemaRecords
from jobs.snapshots import snapshot_before_migration
from jobs.spec import JobSpec
from jobs.states import JobState, check_transition

BUSY_TIMEOUT_MS = 30_000

_JOB_COLUMNS = (
    "id", "name", "researcher", "dataset", "state", "reason", "spec", "code_digest",
    "image_id", "dataset_digest", "params_digest", "bundle_files", "lease_owner",
    "lease_expires", "fence", "attempts", "outcome", "created", "updated", "started",
    "finished",
)  # fmt: skip
_APPROVAL_COLUMNS = (
    "job_id", "approver", "code_digest", "image_id", "dataset_digest", "params_digest",
    "note", "by_policy", "time",
)  # fmt: skip
_UPDATABLE = frozenset(_JOB_COLUMNS) - {
    "id", "name", "researcher", "dataset", "spec", "created", "state",
}  # fmt: skip
_TRUST_COLUMNS = "dataset, code_digest, researcher, params_digest, trusted_by, job_id, time"
_JOB_SELECT = (
    "SELECT "
    + ", ".join(f"j.{c}" for c in _JOB_COLUMNS)
    + ", "
    + ", ".join(f"a.{c}" for c in _APPROVAL_COLUMNS)
    + " FROM jobs j LEFT JOIN approvals a ON a.job_id = j.id"
)


def connect(path: Path | str) -> sqlite3.Connection:
    """Open a connection with the settings every c2d writer of this file uses."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS:d}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _job(row: sqlite3.Row | tuple[Any, ...]) -> Job:
    values = dict(zip(_JOB_COLUMNS, row[: len(_JOB_COLUMNS)], strict=True))
    approval_values = row[len(_JOB_COLUMNS) :]
    approval = None
    if approval_values[0] is not None:
        data = dict(zip(_APPROVAL_COLUMNS, approval_values, strict=True))
        data["by_policy"] = bool(data["by_policy"])
        approval = Approval(**data)
    values["spec"] = JobSpec.model_validate_json(values["spec"])
    values["bundle_files"] = json.loads(values["bundle_files"])
    values["state"] = JobState(values["state"])
    if values["outcome"] is not None:
        values["outcome"] = Outcome.model_validate_json(values["outcome"])
    return Job(**values, approval=approval)


def _dataset(row: tuple[Any, ...]) -> Dataset:
    name, path, digest, files, size, policy, registered, registered_by = row
    return Dataset(
        name=name,
        path=path,
        digest=digest,
        files=files,
        bytes=size,
        policy=DatasetPolicy.model_validate_json(policy),
        registered=registered,
        registered_by=registered_by,
    )


_DATASET_SELECT = (
    "SELECT name, path, digest, files, bytes, policy, registered, registered_by FROM datasets"
)


class Store(SchemaRecords, HostRecords, PeopleRecords, KeyRecords):
    """Typed access to the c2d tables. Safe to share between threads of one process.

    Dataset profiles and dry runs are read and written by ``SchemaRecords``; revocations and
    rotated tokens by ``PeopleRecords``; people's signing keys by ``KeyRecords``."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self._connection: sqlite3.Connection | None = connect(self.path)
        # An older schema is copied aside before it is migrated: see jobs.snapshots.
        self.snapshot: Path | None = snapshot_before_migration(self._connection, self.path)
        with self.transaction() as conn:
            migrations.migrate(conn)

    @property
    def _conn(self) -> sqlite3.Connection:
        if os.getpid() != self._pid:
            # A forked child (a Celery prefork worker) must never use its parent's SQLite
            # handle; it opens its own.
            self._pid = os.getpid()
            self._lock = threading.RLock()
            self._connection = connect(self.path)
        if self._connection is None:
            raise RuntimeError("the store is closed")
        return self._connection

    def close(self) -> None:
        """Close the connection; the store is unusable afterwards."""
        with self._lock:
            if self._connection is not None and os.getpid() == self._pid:
                self._connection.close()
            self._connection = None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` if the block raises.

        Yields the connection so the caller can write its ledger entry in the same
        transaction. Transactions do not nest.
        """
        conn = self._conn
        with self._lock:
            if conn.in_transaction:
                raise RuntimeError("store transactions do not nest")
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise StoreUnavailable(
                    f"the state database {self.path} is busy or unavailable ({exc}); try again"
                ) from exc
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def _write(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        if not self._conn.in_transaction:
            raise RuntimeError("store writes must happen inside store.transaction()")
        return self._conn.execute(sql, params)

    # ---- users ---------------------------------------------------------------------------

    def add_user(self, user: User, token_hash: str) -> None:
        """Insert a user; ``Conflict`` if the name is taken."""
        try:
            self._write(
                "INSERT INTO users (name, role, token_hash, created) VALUES (?, ?, ?, ?)",
                (user.name, user.role.value, token_hash, user.created),
            )
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"user {user.name!r} already exists; pick another name") from exc

    def user_by_token_hash(self, token_hash: str) -> tuple[User, str] | None:
        """The user holding the token with this hash, and the stored hash; a revoked user
        holds none."""
        rows = self._read(
            "SELECT name, role, created, token_hash FROM users"
            " WHERE token_hash = ? AND revoked IS NULL",
            (token_hash,),
        )
        if not rows:
            return None
        name, role, created, stored = rows[0]
        return User(name=name, role=Role(role), created=created), stored

    def get_user(self, name: str) -> User | None:
        """The user called ``name``, if any."""
        rows = self._read("SELECT name, role, created FROM users WHERE name = ?", (name,))
        return User(name=rows[0][0], role=Role(rows[0][1]), created=rows[0][2]) if rows else None

    def list_users(self) -> list[User]:
        """Every user, by name."""
        rows = self._read("SELECT name, role, created FROM users ORDER BY name")
        return [User(name=n, role=Role(r), created=c) for n, r, c in rows]

    # ---- browser sessions ----------------------------------------------------------------

    def add_session(self, secret_hash: str, user: str, created: float, expires: float) -> None:
        """Keep a new session (and drop those that ended before ``created``)."""
        self._write("DELETE FROM web_sessions WHERE expires <= ?", (created,))
        self._write(
            "INSERT INTO web_sessions (secret_hash, user, created, expires) VALUES (?, ?, ?, ?)",
            (secret_hash, user, created, expires),
        )

    def session_user(self, secret_hash: str, now: float) -> tuple[User, str] | None:
        """The user of the live session with this hash, and the stored hash; a revoked user
        has none (revoking also deletes their sessions)."""
        rows = self._read(
            "SELECT u.name, u.role, u.created, s.secret_hash FROM web_sessions s"
            " JOIN users u ON u.name = s.user"
            " WHERE s.secret_hash = ? AND s.expires > ? AND u.revoked IS NULL",
            (secret_hash, now),
        )
        if not rows:
            return None
        name, role, created, stored = rows[0]
        return User(name=name, role=Role(role), created=created), stored

    def delete_session(self, secret_hash: str) -> None:
        """Forget a session (signing out); nothing happens for an unknown one."""
        self._write("DELETE FROM web_sessions WHERE secret_hash = ?", (secret_hash,))

    # ---- datasets ------------------------------------------------------------------------

    def put_dataset(self, dataset: Dataset) -> None:
        """Insert or replace a dataset record."""
        self._write(
            "INSERT INTO datasets (name, owner, host, path, digest, files, bytes, policy,"
            " registered, registered_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, host = excluded.host,"
            " path = excluded.path, digest = excluded.digest, files = excluded.files,"
            " bytes = excluded.bytes, policy = excluded.policy,"
            " registered = excluded.registered, registered_by = excluded.registered_by",
            (
                dataset.name,
                dataset.owner,
                dataset.policy.host,
                dataset.path,
                dataset.digest,
                dataset.files,
                dataset.bytes,
                dataset.policy.model_dump_json(),
                dataset.registered,
                dataset.registered_by,
            ),
        )

    def get_dataset(self, name: str) -> Dataset | None:
        """The dataset called ``name``, if registered."""
        rows = self._read(_DATASET_SELECT + " WHERE name = ?", (name,))
        return _dataset(rows[0]) if rows else None

    def list_datasets(self, owner: str | None = None) -> list[Dataset]:
        """Registered datasets by name, optionally only one owner's."""
        if owner is None:
            return [_dataset(r) for r in self._read(_DATASET_SELECT + " ORDER BY name")]
        rows = self._read(_DATASET_SELECT + " WHERE owner = ? ORDER BY name", (owner,))
        return [_dataset(r) for r in rows]

    def file_cache(self, root: str) -> dict[str, CachedHash]:
        """The hashes kept for files under the dataset folder ``root``."""
        rows = self._read(
            "SELECT path, size, mtime_ns, ctime_ns, inode, sha256, hashed_ns"
            " FROM dataset_files WHERE root = ?",
            (root,),
        )
        return {path: CachedHash(*rest) for path, *rest in rows}

    def save_file_cache(self, root: str, cache: dict[str, CachedHash]) -> None:
        """Replace the hashes kept for ``root``."""
        self._write("DELETE FROM dataset_files WHERE root = ?", (root,))
        self._conn.executemany(
            "INSERT INTO dataset_files (root, path, size, mtime_ns, ctime_ns, inode, sha256,"
            " hashed_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (root, p, c.size, c.mtime_ns, c.ctime_ns, c.inode, c.sha256, c.hashed_ns)
                for p, c in cache.items()
            ],
        )

    def add_trust(self, trusted: TrustedCode) -> None:
        """Record a trusted code digest for a dataset and researcher; ``Conflict`` if a trust
        already covers it (the same params, or any params)."""
        existing = self.trusted_for(
            trusted.dataset, trusted.code_digest, trusted.researcher, trusted.params_digest
        )
        if existing is not None:
            scope = "any params" if existing.any_params else f"params {existing.params_digest}"
            raise Conflict(
                f"code {trusted.code_digest} is already trusted on dataset {trusted.dataset!r} "
                f"for {trusted.researcher} with {scope}"
            )
        self._write(
            f"INSERT INTO trusted_code ({_TRUST_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                trusted.dataset,
                trusted.code_digest,
                trusted.researcher,
                trusted.params_digest,
                trusted.trusted_by,
                trusted.job_id,
                trusted.time,
            ),
        )

    def trusted_for(
        self, dataset: str, code_digest: str, researcher: str, params_digest: str | None
    ) -> TrustedCode | None:
        """The oldest trust of this code on this dataset for this researcher that covers
        ``params_digest`` (one for any params always does; ``None`` asks for such a one)."""
        rows = self._read(
            f"SELECT {_TRUST_COLUMNS} FROM trusted_code"
            " WHERE dataset = ? AND code_digest = ? AND researcher = ?"
            " AND (params_digest IS NULL OR params_digest = ?) ORDER BY time, rowid LIMIT 1",
            (dataset, code_digest, researcher, params_digest),
        )
        if not rows:
            return None
        d, c, researcher_, params, by, job_id, time = rows[0]
        return TrustedCode(
            dataset=d,
            code_digest=c,
            researcher=researcher_,
            params_digest=params,
            trusted_by=by,
            job_id=job_id,
            time=time,
        )

    # ---- jobs ----------------------------------------------------------------------------

    def insert_job_image(self, job_id: str, image: ImageRecord) -> None:
        """Record the own image of a job being inserted (same transaction)."""
        self._write(
            "INSERT INTO job_images (job_id, bundle_digest, image_id, source, dockerfile,"
            " archive_sha256, build_log_digest, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                job_id,
                image.bundle_digest,
                image.image_id,
                image.source,
                image.dockerfile,
                image.archive_sha256,
                image.build_log_digest,
                json.dumps(image.details),
            ),
        )

    def names_blob(self, digest: str) -> bool:
        """Whether a recorded job names artifact ``digest`` as its code bundle (alone, or
        with its own image) or its image archive."""
        rows = self._read(
            "SELECT 1 FROM jobs WHERE code_digest = ? UNION ALL SELECT 1 FROM job_images"
            " WHERE bundle_digest = ? OR archive_sha256 = ? LIMIT 1",
            (digest, digest, digest),
        )
        return bool(rows)

    def job_image(self, job_id: str) -> ImageRecord | None:
        """The own image of a job, or None for a job that runs in a named environment."""
        rows = self._read(
            "SELECT bundle_digest, image_id, source, dockerfile, archive_sha256,"
            " build_log_digest, details FROM job_images WHERE job_id = ?",
            (job_id,),
        )
        if not rows:
            return None
        bundle, image_id, source, dockerfile, archive, log, details = rows[0]
        return ImageRecord(
            bundle_digest=bundle,
            image_id=image_id,
            source=source,
            dockerfile=dockerfile,
            archive_sha256=archive,
            build_log_digest=log,
            details=json.loads(details),
        )

    def image_ids_in_states(
        self, states: tuple[JobState, ...], host: str | None = None
    ) -> set[str]:
        """Image IDs bound by jobs in ``states`` (own images and environments alike), of the
        datasets of data host ``host`` if given."""
        marks = ", ".join("?" for _ in states)
        params: tuple[Any, ...] = tuple(s.value for s in states)
        where = f"state IN ({marks})"
        if host is not None:
            where += " AND dataset IN (SELECT name FROM datasets WHERE host = ?)"
            params += (host,)
        rows = self._read(f"SELECT DISTINCT image_id FROM jobs WHERE {where}", params)
        return {str(r[0]) for r in rows}

    def insert_job(self, job: Job) -> None:
        """Insert a new (pending) job."""
        values = job.model_dump(include=set(_JOB_COLUMNS))
        values["spec"] = job.spec.model_dump_json()
        values["bundle_files"] = json.dumps(job.bundle_files)
        values["state"] = job.state.value
        values["outcome"] = job.outcome.model_dump_json() if job.outcome else None
        self._write(
            f"INSERT INTO jobs ({', '.join(_JOB_COLUMNS)})"
            f" VALUES ({', '.join('?' for _ in _JOB_COLUMNS)})",
            tuple(values[c] for c in _JOB_COLUMNS),
        )

    def get_job(self, job_id: str) -> Job | None:
        """The job with this id, with its approval, if any."""
        rows = self._read(_JOB_SELECT + " WHERE j.id = ?", (job_id,))
        return _job(rows[0]) if rows else None

    def job_state(self, job_id: str) -> JobState | None:
        """Only the job's state: one indexed read, cheap enough to ask many times a second
        (the API's event stream does, to push each change the moment any process makes it)."""
        rows = self._read("SELECT state FROM jobs WHERE id = ?", (job_id,))
        return JobState(rows[0][0]) if rows else None

    def list_jobs(
        self,
        *,
        state: JobState | None = None,
        researcher: str | None = None,
        owner: str | None = None,
        dataset: str | None = None,
    ) -> list[Job]:
        """Jobs oldest first, filtered by state, researcher, dataset and/or dataset owner."""
        where, params = [], []
        if dataset is not None:
            where.append("j.dataset = ?")
            params.append(dataset)
        if state is not None:
            where.append("j.state = ?")
            params.append(state.value)
        if researcher is not None:
            where.append("j.researcher = ?")
            params.append(researcher)
        if owner is not None:
            where.append("j.dataset IN (SELECT name FROM datasets WHERE owner = ?)")
            params.append(owner)
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        rows = self._read(_JOB_SELECT + clause + " ORDER BY j.created, j.id", tuple(params))
        return [_job(r) for r in rows]

    def expired_leases(self, now: float) -> list[Job]:
        """Running jobs whose lease ran out at or before ``now``."""
        rows = self._read(
            _JOB_SELECT + " WHERE j.state = ? AND (j.lease_expires IS NULL OR j.lease_expires <= ?)"
            " ORDER BY j.lease_expires",
            (JobState.RUNNING.value, now),
        )
        return [_job(r) for r in rows]

    def lost_dryruns(self, now: float, submitted_before: float) -> list[Job]:
        """Pending jobs with no dry run kept whose dry-run lease ran out at or before ``now``,
        or that nobody leased and were submitted before ``submitted_before``."""
        rows = self._read(
            _JOB_SELECT + " LEFT JOIN job_dryruns d ON d.job_id = j.id"
            " LEFT JOIN dryrun_leases l ON l.job_id = j.id"
            " WHERE j.state = ? AND d.job_id IS NULL"
            " AND (l.expires <= ? OR (l.job_id IS NULL AND j.created <= ?))"
            " ORDER BY j.created",
            (JobState.PENDING.value, now, submitted_before),
        )
        return [_job(r) for r in rows]

    def last_approved_for(
        self, researcher: str, dataset: str, exclude: str | None = None
    ) -> Job | None:
        """This researcher's most recently approved job on this dataset (not ``exclude``)."""
        rows = self._read(
            _JOB_SELECT + " WHERE j.researcher = ? AND j.dataset = ? AND a.job_id IS NOT NULL"
            " AND j.id IS NOT ? ORDER BY a.time DESC, j.created DESC LIMIT 1",
            (researcher, dataset, exclude),
        )
        return _job(rows[0]) if rows else None

    def update_job(
        self,
        job_id: str,
        *,
        expect: JobState,
        to: JobState | None = None,
        at_fence: int | None = None,
        **changes: Any,
    ) -> None:
        """Compare-and-set a job row: only if it is still in ``expect`` (and at ``at_fence``).

        ``to`` moves the state, which the transition table must allow (``InvalidTransition``
        otherwise). ``Conflict`` when the row no longer matches: someone else changed it first.
        """
        bad = set(changes) - _UPDATABLE
        if bad:
            raise ValueError(f"cannot update job columns {sorted(bad)}; state moves only by `to`")
        if to is not None and to != expect:
            check_transition(expect, to, job_id)
            changes["state"] = to.value
        if isinstance(changes.get("outcome"), Outcome):
            changes["outcome"] = changes["outcome"].model_dump_json()
        sets = ", ".join(f"{column} = ?" for column in changes)
        sql = f"UPDATE jobs SET {sets} WHERE id = ? AND state = ?"
        params = [*changes.values(), job_id, expect.value]
        if at_fence is not None:
            sql += " AND fence = ?"
            params.append(at_fence)
        if self._write(sql, tuple(params)).rowcount != 1:
            raise Conflict(
                f"job {job_id} changed while this action ran (it is no longer {expect.value}"
                + (f" at fence {at_fence}" if at_fence is not None else "")
                + f"); run `c2d status {job_id}` and try again if it still applies"
            )

    def insert_approval(self, approval: Approval) -> None:
        """Record the approval of a job (one per job)."""
        values = approval.model_dump(include=set(_APPROVAL_COLUMNS))
        values["by_policy"] = int(approval.by_policy)
        self._write(
            f"INSERT INTO approvals ({', '.join(_APPROVAL_COLUMNS)})"
            f" VALUES ({', '.join('?' for _ in _APPROVAL_COLUMNS)})",
            tuple(values[c] for c in _APPROVAL_COLUMNS),
        )
