"""`c2d ledger verify --since CHECKPOINT_FILE`: does today's log extend a checkpoint you kept?

Over the API, the check is the library's (``runner.client.consistency.check_since``): the
server's current signed checkpoint and an RFC 9162 consistency proof from the kept size,
verified here against the log's key (given with --key, else pinned at login, else the one the
server serves, with a warning). With --home, the state folder's database is read directly and
verified whole (``ledger.verify_log``) with the kept checkpoint among the roots it must match.
Either way nothing is written: the kept file stays as it was.
"""

from __future__ import annotations

import base64
import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import typer

from ledger.kinds import ExitCode
from runner.cli.options import build_settings
from runner.cli.output import Output
from runner.cli.session import connect, connection
from runner.client.consistency import Consistency, check_since, open_kept, read_note
from runner.errors import IntegrityError, MissingFile

UNPINNED = (
    "no key to compare with: both checkpoints were checked against the key the server serves; "
    "pin one with `c2d login` or pass --key"
)


def verify_since(
    ctx: typer.Context, out: Output, since: Path, home: Path | None, trusted: bytes | None
) -> None:
    """Check the log against the checkpoint in ``since``; print the verdict, exit 1 if the log
    does not extend it."""
    note = read_note(since)
    if home is not None:
        result, source = _at_home(build_settings(home=home).db_path, note, since, trusted)
    else:
        result, source = _remote(ctx, out, note, since, trusted)
    if result.ok:
        out.say(f"ok: {result.detail}")
    else:
        out.error(f"{result.detail} (checked against the checkpoint in {since})")
    out.result({**result.document(), "source": source})
    if not result.ok:
        raise typer.Exit(ExitCode.FAILED)


def _remote(
    ctx: typer.Context, out: Output, note: str, since: Path, trusted: bytes | None
) -> tuple[Consistency, str]:
    conn = connection(ctx, out)
    if trusted is None and conn.public_key:
        trusted = base64.b64decode(conn.public_key)
    with connect(ctx, out) as client:
        served = client.public_key()
        served_key = base64.b64decode(served["public_key"])
        if trusted is not None and trusted != served_key:
            raise IntegrityError(
                f"the server serves ledger key {served['public_key']}, not the key you trust; "
                "nothing was checked: do not rely on this server's log until the operator explains"
            )
        result = check_since(
            client, note, served_key, origin=served.get("origin"), where=str(since)
        )
    if trusted is None:
        out.warn(UNPINNED)
    return result, conn.url


def _stored_key(db: Path) -> tuple[bytes | None, str | None, str | None]:
    """The public key and origin the database names, and its latest checkpoint note."""
    from ledger import storage
    from ledger.keys import parse_public_key

    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        key = storage.get_meta(conn, "public_key")
        origin = storage.get_meta(conn, "origin")
        latest = storage.latest_checkpoint(conn)
    return (
        parse_public_key(key) if key is not None else None,
        origin,
        latest[1] if latest else None,
    )


def _at_home(db: Path, note: str, since: Path, trusted: bytes | None) -> tuple[Consistency, str]:
    from ledger import verify_log

    if not db.is_file():
        raise MissingFile(f"there is no ledger database at {db}; check --home")
    try:
        stored, origin, latest = _stored_key(db)
    except sqlite3.Error as exc:
        raise IntegrityError(f"{db} cannot be read as a ledger database: {exc}") from exc
    key = trusted if trusted is not None else stored
    if key is None:
        raise IntegrityError(f"{db} names no ledger key; pass the log's public key with --key")
    old = open_kept(note, key, origin, str(since))
    report = verify_log(db, trusted, kept=[note])
    facts: dict[str, Any] = {
        "origin": old.origin,
        "kept_size": old.size,
        "kept_root": old.root.hex(),
        "size": report.entries,
        "root": report.root,
        "checkpoint": latest,
    }
    if report.ok:
        detail = (
            f"the log {old.origin} in {db} at size {report.entries} extends the checkpoint you "
            f"kept at size {old.size}: every entry verifies, and the tree of its first "
            f"{old.size} entries has the root you kept"
        )
    else:
        where = f" (first bad entry: {report.first_bad})" if report.first_bad is not None else ""
        detail = f"{report.detail}{where}"
    return Consistency(ok=report.ok, detail=detail, **facts), str(db)
