"""A dishonest operator's rewrite of the ledger: the database and the signing key, no scruples.

``rewrite_history`` changes one earlier entry (or drops the newest ones) and then does what
someone holding both would do to hide it: re-chains every later entry, rebuilds the Merkle
tree and the state row, throws away every checkpoint signed before and signs a new one with
the log's own key. The result verifies on its own (``verify_log`` finds nothing); only a
checkpoint kept from before the rewrite can show it. Works on a live installation's database:
the API reads the ledger's state from the file on every request.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from ledger import Ledger


def _entries(db: Path) -> list[dict[str, Any]]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        rows = conn.execute("SELECT canonical FROM ledger_entries ORDER BY seq").fetchall()
    return [json.loads(bytes(row[0])) for row in rows]


def _replay(times: list[str]) -> Iterator[datetime]:
    for stamp in times:
        yield datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def rewrite_history(
    db: Path,
    key_path: Path,
    origin: str,
    *,
    seq: int | None = None,
    body: dict[str, Any] | None = None,
    keep: int | None = None,
) -> str:
    """Give entry ``seq`` the ``body`` given and/or keep only the first ``keep`` entries, then
    re-sign; the new checkpoint note. Every other entry keeps its type, actor, subject, body
    and time, so the log differs from the honest one exactly where it was rewritten."""
    entries = _entries(db)[:keep]
    if seq is not None:
        entries[seq] = {**entries[seq], "body": body or {}}
    times = _replay([e["time"] for e in entries])
    forged_db = db.with_name(f"forged-{uuid.uuid4().hex[:8]}.db")
    forged = Ledger(forged_db, key_path, origin, clock=lambda: next(times))
    try:
        forged.append_many((e["type"], e["actor"], e["subject"], e["body"]) for e in entries)
        note = forged.checkpoint()
    finally:
        forged.close()
    conn = sqlite3.connect(str(db), isolation_level=None, timeout=30)
    try:
        conn.execute("ATTACH DATABASE ? AS forged", (str(forged_db),))
        conn.execute("BEGIN IMMEDIATE")
        for table in ("ledger_entries", "ledger_checkpoints", "ledger_state"):
            conn.execute(f"DELETE FROM main.{table}")
            conn.execute(f"INSERT INTO main.{table} SELECT * FROM forged.{table}")
        conn.execute("COMMIT")
        conn.execute("DETACH DATABASE forged")
    finally:
        conn.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{forged_db}{suffix}").unlink(missing_ok=True)
    return note
