"""Operator commands: back up the control plane's state folder and restore it.

Both run on the control plane's machine against a state folder (`--home`, else `C2D_HOME`),
like `c2d init`; the work is `runner.control.backups`, imported when a command runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from runner.cli.options import OPERATOR, build_settings
from runner.cli.output import JsonFlag, Output

if TYPE_CHECKING:
    from runner.control.backups.manifest import Manifest

PANEL = OPERATOR
HomeOpt = Annotated[
    Path | None, typer.Option("--home", help="State folder (default: C2D_HOME or ~/.c2d).")
]

app = typer.Typer()


def _progress(doing: str, update: Callable[[str], None]) -> Callable[[int, int, int, int], None]:
    """A copy's running totals, shown at most once a second."""
    shown = [time.monotonic()]

    def progress(files: int, size: int, total_files: int, total_size: int) -> None:
        now = time.monotonic()
        if now - shown[0] >= 1.0:
            shown[0] = now
            update(
                f"{doing}: {files} of {total_files} files, "
                f"{size / 2**20:,.0f} of {total_size / 2**20:,.0f} MiB..."
            )

    return progress


def _summary(manifest: Manifest) -> dict[str, Any]:
    return {
        "created": manifest.created,
        "origin": manifest.origin,
        "ledger_entries": manifest.ledger_entries,
        "ledger_root": manifest.ledger_root,
        "store_schema": manifest.store_schema,
        "private_key": manifest.private_key,
        "files": len(manifest.files),
        "artifacts": len(manifest.artifacts()),
        "bytes": manifest.total_bytes,
    }


@app.command(rich_help_panel=PANEL)
def backup(
    folder: Annotated[
        Path, typer.Argument(metavar="DIR", help="The new folder to write (must not exist).")
    ],
    home: HomeOpt = None,
    include_key: Annotated[
        bool,
        typer.Option(
            "--include-key",
            help="Also copy the ledger's private key (whoever holds the backup can then sign "
            "as the log).",
        ),
    ] = False,
    json_out: JsonFlag = False,
) -> None:
    """Back up the state folder (database, ledger key, artifacts) while the API may run."""
    from runner.control.backups.make import write_backup

    out = Output.start(json_out)
    settings = build_settings(home=home)
    if include_key:
        out.warn(
            "the backup will hold the ledger's private key: whoever reads it can sign "
            "checkpoints as this log. Keep it where only the operator can read it (offline, "
            "or encrypted)"
        )
    if folder.absolute().resolve().is_relative_to(settings.home.absolute().resolve()):
        out.warn(
            f"{folder} lies inside the state folder {settings.home}: a backup there is lost "
            "with it; copy it to another disk or machine"
        )
    doing = f"backing up {settings.home}"
    with out.status(doing + "...") as update:
        report = write_backup(
            settings, folder, include_key=include_key, progress=_progress(doing, update)
        )
    manifest = report.manifest
    artifacts = len(manifest.artifacts())
    for damaged in report.damaged:
        out.warn(
            f"artifact {damaged} is damaged in the store and was left out of the backup; "
            "whatever names it cannot be fetched from this backup"
        )
    out.say(
        f"backed up {settings.home} to {report.path}: the database ({manifest.ledger_entries} "
        f"ledger entries, checkpoint signed and verified), {artifacts} "
        f"artifact{'' if artifacts == 1 else 's'}, {manifest.total_bytes / 2**20:,.1f} MiB in all"
    )
    if not include_key:
        out.hint(
            f"the ledger's private key is not in it: keep a copy of {settings.key_path} apart "
            "(a restore needs it to go on signing), or back up with --include-key"
        )
    out.result(
        {
            **_summary(manifest),
            "path": str(report.path),
            "home": str(settings.home),
            "damaged": report.damaged,
        },
        str(report.path),
    )


@app.command(rich_help_panel=PANEL)
def restore(
    folder: Annotated[Path, typer.Argument(metavar="DIR", help="A folder `c2d backup` wrote.")],
    home: HomeOpt = None,
    key: Annotated[
        Path | None,
        typer.Option(
            "--key",
            help="The ledger's public key as you published it (default: the backup's own).",
        ),
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Restore a backup into an empty state folder, after checking every digest and the ledger."""
    from runner.client.ledger_check import read_public_key
    from runner.control.backups.restore import restore_backup

    out = Output.start(json_out)
    settings = build_settings(home=home)
    trusted = read_public_key(key) if key else None
    doing = f"checking and restoring {folder}"
    with out.status(doing + "...") as update:
        report = restore_backup(
            folder, settings, trusted_key=trusted, progress=_progress(doing, update)
        )
    manifest = report.manifest
    against = "the key you passed" if key else "the backup's own public key"
    out.say(
        f"restored the backup of {manifest.created} into {report.home}: every file matches "
        f"its manifest and the ledger verifies against {against} ({report.ledger.detail})"
    )
    if report.needs_key:
        out.warn(
            f"the backup holds no ledger private key: copy the installation's key to "
            f"{report.home / 'ledger.key'} (chmod 600) before starting c2d; the log cannot go "
            "on without it, and a new key cannot continue it"
        )
    out.hint(
        f"run c2d with C2D_HOME={report.home} and C2D_ORIGIN={manifest.origin} "
        f"(the ledger's name), then check it with `c2d ledger verify --home {report.home}`"
    )
    if report.hosts:
        out.hint(
            f"data hosts enrolled in it: {', '.join(report.hosts)}. Their own state folders "
            "are not in a backup (on one machine, `local` keeps its in HOME/hosts/local): a "
            "host whose folder survived connects as before, one whose folder is lost enrolls "
            "again (`c2d host add NAME --renew`)"
        )
    out.result(
        {
            **_summary(manifest),
            "home": str(report.home),
            "source": str(folder),
            "needs_key": report.needs_key,
            "hosts": report.hosts,
            "ledger": report.ledger.model_dump(),
        },
        str(report.home),
    )
