"""`c2d fetch`: download a released job's outputs and prove they are what the ledger recorded.

The checks are the library's (``runner.client.verify.fetch_verified``), so a Python caller gets
exactly the same; this command only picks the key the person holds and reports.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Annotated

import typer

from runner.cli.options import RESEARCHER
from runner.cli.output import JsonFlag, Output
from runner.cli.session import connect, connection

app = typer.Typer()
UNPINNED = (
    "the receipt was checked only against the ledger key this server sent, which proves "
    "nothing if the server itself is not honest; pin the log's key once with "
    "`c2d login URL --with-token --key FILE` (or pass --key FILE), FILE being the public key the "
    "operator publishes ($C2D_HOME/ledger.key.pub)"
)
PROOF = {
    "given": "the receipt verifies against the log key given with --key",
    "pinned": "the receipt verifies against the log key pinned at login",
    "served": "the receipt verifies against the key the server sent (see the warning)",
}


@app.command(rich_help_panel=RESEARCHER)
def fetch(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(metavar="JOB", help="The job id.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Folder to save into (default: ./JOB).")
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option("--key", help="The log's public key to require (default: pinned at login)."),
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Download a released job's artifacts, metrics.json and receipt.json, all verified."""
    from runner.client.consistency import KeptCheckpoints
    from runner.client.ledger_check import read_public_key
    from runner.client.verify import KeySource, fetch_verified

    out = Output.start(json_out)
    folder = output or Path(job_id)
    conn = connection(ctx, out)
    pinned = read_public_key(key) if key else None
    source: KeySource = "given"
    if pinned is None and conn.public_key:
        pinned, source = base64.b64decode(conn.public_key), "pinned"
    with connect(ctx, out) as client, out.downloads() as observer:
        got = fetch_verified(
            client,
            job_id,
            folder,
            key=pinned,
            key_source=source,
            observer=observer,
            kept=KeptCheckpoints.beside(conn.config_file),
        )
    out.say(
        f"fetched {len(got.files)} files into {folder}; every digest matches the outcome and "
        f"the receipt, and {PROOF[got.key]} (log size {got.log_size})"
    )
    if got.kept_size is not None:
        out.say(
            f"the log at size {got.log_size} extends the checkpoint kept at your last fetch "
            f"(size {got.kept_size})"
        )
    if got.key == "served":
        out.warn(UNPINNED)
    out.result(
        {
            "id": job_id,
            "dir": str(folder),
            "files": [{"name": f.name, "sha256": f.sha256, "bytes": f.bytes} for f in got.files],
            "metrics": got.metrics,
            "receipt": str(got.receipt),
            "verified": True,
            # "served": checked against the key the server sent, not one the caller holds.
            "key": got.key,
            "log_size": got.log_size,
            # The size of the checkpoint kept from the last fetch that this log extends.
            "kept_size": got.kept_size,
        },
        str(folder),
    )
