"""The people migration adds revocation and rotated tokens to an older database: everyone who
could sign in before still can, with the same token, and nobody comes out revoked."""

from __future__ import annotations

from pathlib import Path

from jobs import migrations
from jobs.accounts import token_hash
from jobs.store import Store, connect

# The schema version just before the migration that made `retired_tokens`.
BEFORE = next(
    i for i, m in enumerate(migrations.MIGRATIONS) if any("retired_tokens" in s for s in m)
)


def database_before_people(path: Path) -> None:
    """A database as c2d left it before the people migration, with an admin and a researcher."""
    conn = connect(path)
    conn.execute("BEGIN IMMEDIATE")
    for version in range(1, BEFORE + 1):
        for statement in migrations.MIGRATIONS[version - 1]:
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {BEFORE:d}")
    for name, role in (("ada", "admin"), ("rita", "researcher")):
        conn.execute("INSERT INTO users VALUES (?, ?, ?, 1)", (name, role, token_hash(name)))
    conn.execute("COMMIT")
    conn.close()


def test_users_of_before_keep_their_tokens_and_are_not_revoked(tmp_path: Path) -> None:
    path = tmp_path / "c2d.db"
    database_before_people(path)
    store = Store(path)
    try:
        assert migrations.schema_version(store._conn) == migrations.LATEST
        found = store.user_by_token_hash(token_hash("rita"))
        assert found is not None
        assert found[0].name == "rita"
        accounts = store.accounts()
        assert [(a.name, a.revoked, a.revoked_by) for a in accounts] == [
            ("ada", None, None),
            ("rita", None, None),
        ]
        assert store.active_admins() == ["ada"]
        assert store.token_fate(token_hash("rita")) is None
    finally:
        store.close()
