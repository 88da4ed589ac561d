"""The job store's schema, as forward migrations numbered by ``PRAGMA user_version``.

Each migration is a tuple of statements run in order inside the caller's ``BEGIN IMMEDIATE``
(never ``executescript``, which would commit it), followed by ``PRAGMA user_version = N``, so a
migration applies entirely or not at all. Never edit a released migration; append a new one.

The ledger keeps its own ``ledger_`` tables in the same file and versions them itself.
"""

from __future__ import annotations

import sqlite3

from jobs.errors import StoreUnavailable
from jobs.states import JobState, transition_pairs

_STATES = ", ".join(f"'{s.value}'" for s in JobState)

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: users, datasets, the dataset hash cache, jobs, approvals, trusted code.
    (
        "CREATE TABLE users ("
        " name TEXT PRIMARY KEY,"
        " role TEXT NOT NULL CHECK (role IN ('admin', 'owner', 'researcher')),"
        " token_hash TEXT NOT NULL UNIQUE,"
        " created REAL NOT NULL)",
        "CREATE TABLE datasets ("
        " name TEXT PRIMARY KEY,"
        " owner TEXT NOT NULL REFERENCES users (name),"
        " host TEXT NOT NULL,"
        " path TEXT NOT NULL,"
        " digest TEXT NOT NULL,"
        " files INTEGER NOT NULL,"
        " bytes INTEGER NOT NULL,"
        " policy TEXT NOT NULL,"
        " registered REAL NOT NULL,"
        " registered_by TEXT NOT NULL)",
        "CREATE TABLE dataset_files ("
        " root TEXT NOT NULL,"
        " path TEXT NOT NULL,"
        " size INTEGER NOT NULL,"
        " mtime_ns INTEGER NOT NULL,"
        " ctime_ns INTEGER NOT NULL,"
        " inode INTEGER NOT NULL,"
        " sha256 TEXT NOT NULL,"
        " hashed_ns INTEGER NOT NULL,"
        " PRIMARY KEY (root, path)) WITHOUT ROWID",
        "CREATE TABLE jobs ("
        " id TEXT PRIMARY KEY,"
        " name TEXT NOT NULL,"
        " researcher TEXT NOT NULL REFERENCES users (name),"
        " dataset TEXT NOT NULL REFERENCES datasets (name),"
        f" state TEXT NOT NULL CHECK (state IN ({_STATES})),"
        " reason TEXT,"
        " spec TEXT NOT NULL,"
        " code_digest TEXT NOT NULL,"
        " image_id TEXT NOT NULL,"
        " dataset_digest TEXT NOT NULL,"
        " params_digest TEXT NOT NULL,"
        " bundle_files TEXT NOT NULL,"
        " lease_owner TEXT,"
        " lease_expires REAL,"
        " fence INTEGER NOT NULL DEFAULT 0,"
        " attempts INTEGER NOT NULL DEFAULT 0,"
        " outcome TEXT,"
        " created REAL NOT NULL,"
        " updated REAL NOT NULL,"
        " started REAL,"
        " finished REAL)",
        "CREATE INDEX jobs_by_state ON jobs (state, created)",
        "CREATE INDEX jobs_by_researcher ON jobs (researcher, dataset, created)",
        "CREATE INDEX jobs_by_dataset ON jobs (dataset, created)",
        "CREATE TABLE approvals ("
        " job_id TEXT PRIMARY KEY REFERENCES jobs (id),"
        " approver TEXT NOT NULL,"
        " code_digest TEXT NOT NULL,"
        " image_id TEXT NOT NULL,"
        " dataset_digest TEXT NOT NULL,"
        " params_digest TEXT NOT NULL,"
        " note TEXT NOT NULL,"
        " by_policy INTEGER NOT NULL,"
        " time REAL NOT NULL)",
        "CREATE TABLE trusted_code ("
        " dataset TEXT NOT NULL REFERENCES datasets (name),"
        " code_digest TEXT NOT NULL,"
        " trusted_by TEXT NOT NULL,"
        " job_id TEXT NOT NULL,"
        " time REAL NOT NULL,"
        " PRIMARY KEY (dataset, code_digest))",
        # The transition table, mirrored from jobs.states by sync_transitions on every open;
        # the triggers make SQLite itself refuse any other state change.
        "CREATE TABLE job_transitions ("
        " from_state TEXT NOT NULL, to_state TEXT NOT NULL,"
        " PRIMARY KEY (from_state, to_state)) WITHOUT ROWID",
        "CREATE TRIGGER jobs_state_change BEFORE UPDATE OF state ON jobs"
        " WHEN NEW.state IS NOT OLD.state AND NOT EXISTS ("
        "  SELECT 1 FROM job_transitions"
        "  WHERE from_state = OLD.state AND to_state = NEW.state)"
        " BEGIN SELECT RAISE(ABORT, 'job state change not in the transition table'); END",
        "CREATE TRIGGER jobs_start_pending BEFORE INSERT ON jobs"
        " WHEN NEW.state IS NOT 'pending'"
        " BEGIN SELECT RAISE(ABORT, 'a new job must be pending'); END",
    ),
    # 2: a job's own container image (built from its Dockerfile or loaded from an archive):
    # the bundle digest (the job's code digest then covers bundle and image), the image ID,
    # the host's description of the image (JSON) and the digest of its build log.
    (
        "CREATE TABLE job_images ("
        " job_id TEXT PRIMARY KEY REFERENCES jobs (id),"
        " bundle_digest TEXT NOT NULL,"
        " image_id TEXT NOT NULL,"
        " source TEXT NOT NULL CHECK (source IN ('dockerfile', 'archive')),"
        " dockerfile TEXT,"
        " archive_sha256 TEXT,"
        " build_log_digest TEXT NOT NULL,"
        " details TEXT NOT NULL)",
        "CREATE INDEX job_images_by_image ON job_images (image_id)",
    ),
    # 3: developing against unseen data: each dataset's profile as made at registration (for
    # its owner; researchers get a view of it), and each job's pre-approval dry run on mock
    # data. Both as JSON of their models in jobs.schema_records.
    (
        "CREATE TABLE dataset_profiles ("
        " name TEXT PRIMARY KEY REFERENCES datasets (name),"
        " record TEXT NOT NULL)",
        "CREATE TABLE job_dryruns ("
        " job_id TEXT PRIMARY KEY REFERENCES jobs (id),"
        " record TEXT NOT NULL,"
        " time REAL NOT NULL)",
    ),
    # 4: who is dry-running a pending job, and until when. A dry run whose worker died is sent
    # again once its lease runs out, as a job's run is; the row goes when the dry run is kept.
    (
        "CREATE TABLE dryrun_leases ("
        " job_id TEXT PRIMARY KEY REFERENCES jobs (id),"
        " worker TEXT NOT NULL,"
        " expires REAL NOT NULL)",
    ),
    # 5: trust is scoped. A trusted code digest approves by policy only jobs of the researcher
    # it was trusted for, with the params digest it was trusted with (NULL: any params). A row
    # of before keeps exactly the job it was set on: its researcher and params digest (both
    # are in that job's `job.submitted` entry, so the ledger shows the scope too). A row whose
    # job is gone cannot be scoped and is dropped: trust is never widened.
    (
        "CREATE TABLE trusted_code_scoped ("
        " dataset TEXT NOT NULL REFERENCES datasets (name),"
        " code_digest TEXT NOT NULL,"
        " researcher TEXT NOT NULL REFERENCES users (name),"
        " params_digest TEXT,"
        " trusted_by TEXT NOT NULL,"
        " job_id TEXT NOT NULL,"
        " time REAL NOT NULL)",
        "INSERT INTO trusted_code_scoped (dataset, code_digest, researcher, params_digest,"
        " trusted_by, job_id, time)"
        " SELECT t.dataset, t.code_digest, j.researcher, j.params_digest, t.trusted_by,"
        " t.job_id, t.time FROM trusted_code t JOIN jobs j ON j.id = t.job_id",
        "DROP TABLE trusted_code",
        "ALTER TABLE trusted_code_scoped RENAME TO trusted_code",
        "CREATE UNIQUE INDEX trusted_code_scope ON trusted_code"
        " (dataset, code_digest, researcher, ifnull(params_digest, ''))",
    ),
    # 6: data hosts (jobs.host_records): each enrolls once with a one-time token, then speaks
    # with its own credential and signs with its own key.
    (
        "CREATE TABLE hosts ("
        " name TEXT PRIMARY KEY,"
        " added_by TEXT NOT NULL,"
        " created REAL NOT NULL,"
        " enroll_hash TEXT UNIQUE,"
        " public_key TEXT,"
        " fingerprint TEXT,"
        " token_hash TEXT UNIQUE,"
        " enrolled REAL,"
        " last_seen REAL,"
        " environments TEXT NOT NULL DEFAULT '{}',"
        " agent TEXT NOT NULL DEFAULT '')",
    ),
    # 7: browser sessions (the web pages): a token is exchanged once for a session whose
    # secret lives only in the browser's cookie; the store keeps its sha256, as for tokens.
    (
        "CREATE TABLE web_sessions ("
        " secret_hash TEXT PRIMARY KEY,"
        " user TEXT NOT NULL REFERENCES users (name),"
        " created REAL NOT NULL,"
        " expires REAL NOT NULL)",
        "CREATE INDEX web_sessions_by_expiry ON web_sessions (expires)",
    ),
    # 8: whether a data host's Docker engine answered when it last said hello (NULL: its agent
    # has not said since it enrolled); readiness (`/v1/ready`) and `/metrics` report it.
    ("ALTER TABLE hosts ADD COLUMN engine_ok INTEGER",),
    # 9: people (jobs.people_records): a user can be revoked (when, by whom), and the hashes
    # of tokens replaced by a rotation are kept, so an old token is refused with a message
    # that says what happened to it instead of "unknown token".
    (
        "ALTER TABLE users ADD COLUMN revoked REAL",
        "ALTER TABLE users ADD COLUMN revoked_by TEXT",
        "CREATE TABLE retired_tokens ("
        " token_hash TEXT PRIMARY KEY,"
        " user TEXT NOT NULL REFERENCES users (name),"
        " retired REAL NOT NULL,"
        " retired_by TEXT NOT NULL)",
    ),
    # 10: people's signing keys (jobs.key_records), with the sequence numbers of the ledger
    # entries that registered and revoked each, so "was key F a key of user U at log size N"
    # is one lookup.
    (
        "CREATE TABLE user_keys ("
        " fingerprint TEXT PRIMARY KEY,"
        " user TEXT NOT NULL REFERENCES users (name),"
        " public_key TEXT NOT NULL UNIQUE,"
        " registered REAL NOT NULL,"
        " registered_seq INTEGER NOT NULL,"
        " revoked REAL,"
        " revoked_by TEXT,"
        " revoked_seq INTEGER)",
        "CREATE INDEX user_keys_by_user ON user_keys (user)",
    ),
    # 11: the nonces of signed submissions (jobs.signed_actions), one row per user and nonce,
    # so a signed c2d/submit statement submits one job, never two.
    (
        "CREATE TABLE submit_nonces ("
        " user TEXT NOT NULL REFERENCES users (name),"
        " nonce TEXT NOT NULL,"
        " job_id TEXT NOT NULL,"
        " PRIMARY KEY (user, nonce))",
    ),
)

LATEST = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    """The version the database is at (0 for a new file)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema to ``LATEST`` inside the caller's transaction; return the old version.

    Raises ``StoreUnavailable`` when the database is newer than this code.
    """
    current = schema_version(conn)
    if current > LATEST:
        raise StoreUnavailable(
            f"the state database is at schema version {current}, but this c2d knows only "
            f"up to {LATEST}; upgrade c2d before using it"
        )
    for version in range(current + 1, LATEST + 1):
        for statement in MIGRATIONS[version - 1]:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {version:d}")
    sync_transitions(conn)
    return current


def sync_transitions(conn: sqlite3.Connection) -> None:
    """Make ``job_transitions`` equal the table in ``jobs.states``."""
    wanted = {(a.value, b.value) for a, b in transition_pairs()}
    stored = set(conn.execute("SELECT from_state, to_state FROM job_transitions").fetchall())
    if stored != wanted:
        conn.execute("DELETE FROM job_transitions")
        conn.executemany(
            "INSERT INTO job_transitions (from_state, to_state) VALUES (?, ?)", sorted(wanted)
        )
