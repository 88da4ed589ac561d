"""Before the store migrates an older schema it copies the database beside itself, and says
where; a new database or one already at the latest schema is not copied."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from jobs import migrations
from jobs.snapshots import copy_database
from jobs.store import Store, connect

OLD = migrations.LATEST - 1


def old_database(path: Path, version: int = OLD) -> None:
    """A database as an earlier c2d left it at ``version``, with one user."""
    conn = connect(path)
    conn.execute("BEGIN IMMEDIATE")
    for number in range(1, version + 1):
        for statement in migrations.MIGRATIONS[number - 1]:
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {version:d}")
    conn.execute(
        "INSERT INTO users (name, role, token_hash, created) VALUES ('olga', 'owner', 'h-olga', 1)"
    )
    conn.execute("COMMIT")
    conn.close()


def version_of(path: Path) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


def test_an_older_schema_is_copied_before_it_is_migrated(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "c2d.db"
    old_database(db)
    with caplog.at_level(logging.WARNING, logger="jobs.snapshots"):
        store = Store(db)
    try:
        snapshot = store.snapshot
        assert snapshot is not None
        assert snapshot.parent == tmp_path
        assert snapshot.name.startswith(f"c2d.db.schema-v{OLD}.")
        assert version_of(snapshot) == OLD
        assert version_of(db) == migrations.LATEST
        with sqlite3.connect(f"file:{snapshot}?mode=ro", uri=True) as conn:
            assert conn.execute("SELECT name FROM users").fetchall() == [("olga",)]
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert str(snapshot) in caplog.text
        assert f"schema version {OLD}" in caplog.text
    finally:
        store.close()
    # Opened again at the latest schema: nothing more to copy.
    again = Store(db)
    try:
        assert again.snapshot is None
    finally:
        again.close()
    assert sorted(p.name for p in tmp_path.glob("*.bak")) == [snapshot.name]


def test_a_new_database_is_not_copied(tmp_path: Path) -> None:
    store = Store(tmp_path / "c2d.db")
    try:
        assert store.snapshot is None
    finally:
        store.close()
    assert list(tmp_path.glob("*.bak")) == []


def test_a_copy_is_never_written_over_a_file(tmp_path: Path) -> None:
    db = tmp_path / "c2d.db"
    old_database(db)
    (tmp_path / "taken").write_text("keep")
    with pytest.raises(FileExistsError):
        copy_database(db, tmp_path / "taken")
    assert (tmp_path / "taken").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c2d.db", "taken"]
