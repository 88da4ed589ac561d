"""Commands anyone can run to check the ledger: verify the log, show entries, verify a receipt."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ledger.kinds import ExitCode
from runner.cli.options import ANYONE, build_settings
from runner.cli.output import JsonFlag, Output
from runner.cli.session import connect, connection
from runner.errors import ClientConfigError, IntegrityError, MissingFile

if TYPE_CHECKING:
    # The signing library and the Merkle tree come with these: imported by the commands.
    from ledger import VerifyReport
    from runner.client.api import Client

PANEL = ANYONE
KeyOpt = Annotated[
    Path | None,
    typer.Option("--key", help="The log's public key (base64 text, raw, PEM or the API's JSON)."),
]

ledger_app = typer.Typer(help="Check and read the tamper-evident ledger.", no_args_is_help=True)
receipt_app = typer.Typer(help="Check a job's receipt offline.", no_args_is_help=True)
app = typer.Typer()
app.add_typer(ledger_app, name="ledger", rich_help_panel=PANEL)
app.add_typer(receipt_app, name="receipt", rich_help_panel=PANEL)


def _verify_remote(client: Client, trusted: bytes | None) -> tuple[VerifyReport, str]:
    from ledger import VerifyReport
    from runner.client.ledger_check import verify_downloaded_log

    served = client.public_key()
    served_key = base64.b64decode(served["public_key"])
    if trusted is not None and trusted != served_key:
        return VerifyReport(
            ok=False,
            entries=0,
            detail=f"the server serves ledger key {served['public_key']}, not the key you "
            "trust; do not rely on this server's log until the operator explains",
        ), served["public_key"]
    latest = client.checkpoint()  # asks the log to sign its current head first
    notes = client.checkpoints()
    if latest not in notes:
        notes.append(latest)
    entries = client.ledger_entries()
    return verify_downloaded_log(entries, notes, served_key, served.get("origin")), served[
        "public_key"
    ]


@ledger_app.command("verify")
def ledger_verify(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option("--home", help="Verify this local state folder's database directly."),
    ] = None,
    key: KeyOpt = None,
    since: Annotated[
        Path | None,
        typer.Option(
            "--since",
            metavar="CHECKPOINT_FILE",
            help="Check only that today's log extends this checkpoint you kept (a signed "
            "checkpoint note, such as the ones `c2d fetch` keeps).",
        ),
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Recompute every entry hash, link, Merkle node and checkpoint signature of the log, or
    with --since check that the log extends a checkpoint you kept."""
    from ledger import verify_log
    from runner.client.ledger_check import read_public_key

    out = Output.start(json_out)
    trusted = read_public_key(key) if key else None
    if since is not None:
        from runner.cli.ledger_since import verify_since

        verify_since(ctx, out, since, home, trusted)
        return
    if home is not None:
        db = build_settings(home=home).db_path
        report = verify_log(db, trusted)
        source = str(db)
    else:
        conn = connection(ctx, out)
        if trusted is None and conn.public_key:
            trusted = base64.b64decode(conn.public_key)
        with connect(ctx, out) as client:
            report, _ = _verify_remote(client, trusted)
        source = conn.url
        if trusted is None:
            out.warn(
                "no key to compare with: checked against the key the server serves; pin one "
                "with `c2d login` or pass --key"
            )
    document = {**report.model_dump(), "source": source}
    if report.ok:
        out.say(f"ok: {report.detail}")
    else:
        where = f" (first bad entry: {report.first_bad})" if report.first_bad is not None else ""
        out.error(f"the ledger does not verify{where}: {report.detail}")
    out.result(document)
    if not report.ok:
        raise typer.Exit(ExitCode.FAILED)


@ledger_app.command("show")
def ledger_show(
    ctx: typer.Context,
    job: Annotated[str | None, typer.Option("--job", help="Only this job's entries.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Print the ledger's entries (all, or one job's)."""
    out = Output.start(json_out)
    with connect(ctx, out) as client:
        entries: list[dict[str, Any]] = [json.loads(e) for e in client.ledger_entries()]
    if job is not None:
        entries = [e for e in entries if e.get("subject") == job]
    out.table(
        ["seq", "time", "type", "actor", "subject"],
        [[e["seq"], e["time"], e["type"], e["actor"], e["subject"]] for e in entries],
        empty="no entries" + (f" for job {job}" if job else ""),
    )
    out.result(entries)


@receipt_app.command("verify")
def receipt_verify(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="The receipt.json that `c2d fetch` saved.")
    ],
    key: Annotated[
        Path | None,
        typer.Option(
            "--key",
            help="The log's public key as its operator publishes it (default: the key "
            "`c2d login` pinned).",
        ),
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Check a receipt offline: signature, inclusion proofs and links, against the log's key,
    and (c2d-receipt/2) every actor's signature against the key entries it carries."""
    from ledger import LedgerError, verify_receipt
    from runner.client.ledger_check import read_public_key

    out = Output.start(json_out)
    if key is not None:
        trusted = read_public_key(key)
    else:
        pinned = connection(ctx, out).public_key  # read from the config file: no network
        if pinned is None:
            raise typer.BadParameter(
                "no key to check against: pass --key FILE (the operator publishes "
                "$C2D_HOME/ledger.key.pub), or pin the log's key once with "
                "`c2d login URL --with-token`",
                param_hint="--key",
            )
        trusted = base64.b64decode(pinned)
    try:
        data = file.read_bytes()
    except FileNotFoundError as exc:
        raise MissingFile(f"there is no receipt {file}; `c2d fetch JOB` saves one") from exc
    except OSError as exc:
        raise ClientConfigError(f"cannot read {file}: {exc}") from exc
    try:
        check = verify_receipt(json.loads(data), trusted)
    except (ValueError, LedgerError) as exc:
        # A receipt that is malformed after tampering is as untrustworthy as one whose
        # proof fails: both are a failed verification (exit 1), not a usage error.
        raise IntegrityError(f"{file} does not verify: {exc}") from exc
    from runner.cli.receipt_words import facts, publication_facts, published, sentence

    types = [e.type for e in check.entries]
    out.say(
        f"ok: {len(check.entries)} entries about {check.subject} are in log {check.origin} "
        f"at size {check.size}: {', '.join(types)}"
    )
    if check.actions:
        words = sentence(check.actions)
        if any(e.type == "job.submitted" for e in check.entries):
            words += f", {published(check.publication, check.actions)}"
        out.say(f"{words}; in log {check.origin} at size {check.size}")
    out.result(
        {
            "ok": True,
            "format": check.format,
            "subject": check.subject,
            "origin": check.origin,
            "size": check.size,
            "root": check.root,
            "actions": facts(check.actions),
            "publication": publication_facts(check.publication, check.actions),
            "entries": [json.loads(e.canonical_bytes()) for e in check.entries],
            "keys": [json.loads(e.canonical_bytes()) for e in check.keys],
            "dataset": json.loads(check.dataset.canonical_bytes()) if check.dataset else None,
        }
    )
