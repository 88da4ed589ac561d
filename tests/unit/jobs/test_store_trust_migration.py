"""Migration 5 scopes the trust rows of an older database: never wider than the job they
were set on (its researcher and params digest); a row whose job is gone is dropped."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from jobs import migrations
from jobs.store import Store, connect

D = "sha256:" + "d" * 64
CODE = "sha256:" + "c" * 64
PARAMS = "sha256:" + "a" * 64


def version_4_database(path: Path) -> None:
    """A database as c2d left it at schema 4, with two trust rows (one of a lost job)."""
    conn = connect(path)
    conn.execute("BEGIN IMMEDIATE")
    for version in range(1, 5):
        for statement in migrations.MIGRATIONS[version - 1]:
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 4")
    for name, role in (("olga", "owner"), ("rita", "researcher")):
        conn.execute("INSERT INTO users VALUES (?, ?, ?, 1)", (name, role, f"h-{name}"))
    conn.execute(
        "INSERT INTO datasets VALUES ('iris', 'olga', 'default', '/srv/d/iris', ?, 1, 1,"
        " '{\"owner\": \"olga\"}', 1, 'olga')",
        (D,),
    )
    conn.execute(
        "INSERT INTO jobs (id, name, researcher, dataset, state, spec, code_digest, image_id,"
        " dataset_digest, params_digest, bundle_files, created, updated) VALUES"
        " ('j1', 't', 'rita', 'iris', 'pending', '{}', ?, 'sha256:i', ?, ?, '[]', 1, 1)",
        (CODE, D, PARAMS),
    )
    conn.execute("INSERT INTO trusted_code VALUES ('iris', ?, 'olga', 'j1', 5)", (CODE,))
    other = "sha256:" + "e" * 64
    conn.execute("INSERT INTO trusted_code VALUES ('iris', ?, 'olga', 'gone', 6)", (other,))
    conn.execute("COMMIT")
    conn.close()


def test_old_trust_keeps_exactly_the_researcher_and_params_of_its_job(tmp_path: Path) -> None:
    path = tmp_path / "c2d.db"
    version_4_database(path)
    store = Store(path)
    try:
        assert migrations.schema_version(store._conn) == migrations.LATEST
        trusted = store.trusted_for("iris", CODE, "rita", PARAMS)
        assert trusted is not None
        assert (trusted.researcher, trusted.params_digest) == ("rita", PARAMS)
        assert (trusted.trusted_by, trusted.job_id, trusted.time) == ("olga", "j1", 5)
        # Narrowed, never widened: other params, other researchers, any-params all miss.
        assert store.trusted_for("iris", CODE, "rita", "sha256:" + "b" * 64) is None
        assert store.trusted_for("iris", CODE, "olga", PARAMS) is None
        assert store.trusted_for("iris", CODE, "rita", None) is None
        rows = store._read("SELECT job_id FROM trusted_code")
        assert rows == [("j1",)]  # the row of the lost job could not be scoped
    finally:
        store.close()


def test_the_scope_is_unique_even_for_any_params(tmp_path: Path) -> None:
    """SQLite lets NULLs repeat in a unique key; the index counts NULL (any params) as one."""
    Store(tmp_path / "c2d.db").close()
    conn = sqlite3.connect(tmp_path / "c2d.db")
    insert = (
        "INSERT INTO trusted_code (dataset, code_digest, researcher, params_digest,"
        " trusted_by, job_id, time) VALUES ('iris', ?, 'rita', NULL, 'olga', 'j', 1)"
    )
    try:
        conn.execute(insert, (CODE,))  # foreign keys are off on this plain connection
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
            conn.execute(insert, (CODE,))
    finally:
        conn.close()
