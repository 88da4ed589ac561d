"""`c2d login`: check a token against a server, then save both and pin the ledger's key."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Annotated

import typer

from runner.cli.config import ClientConfig, ClientEnv, config_path, save_config
from runner.cli.options import ANYONE
from runner.cli.output import JsonFlag, Output
from runner.cli.session import globals_of
from runner.client import Client
from runner.client.ledger_check import read_public_key
from runner.errors import IntegrityError

app = typer.Typer()


@app.command(rich_help_panel=ANYONE)
def login(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(metavar="URL", help="API URL, e.g. http://127.0.0.1:8700")],
    token: Annotated[
        str, typer.Argument(metavar="TOKEN", help="Your API token (from `c2d user add`).")
    ],
    key: Annotated[
        Path | None,
        typer.Option(
            "--key",
            help="The ledger's public key as published by its operator; login refuses a server "
            "that serves another. Without it, the key the server serves now is pinned.",
        ),
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Check TOKEN against URL, then save both (and the ledger key) for later commands."""
    out = Output.start(json_out)
    pinned = read_public_key(key) if key else None
    with Client(url, token, globals_of(ctx).timeout) as client:
        me = client.me()
        served = client.public_key()
    served_key = base64.b64decode(served["public_key"])
    if pinned is not None and pinned != served_key:
        raise IntegrityError(
            f"{url} serves ledger key {served['public_key']}, not the key in {key}; "
            "nothing was saved; ask the operator which key is right"
        )
    path = config_path(ClientEnv())
    save_config(
        path,
        ClientConfig(url=url.rstrip("/"), token=token, public_key=served["public_key"]),
    )
    out.say(f"logged in to {url} as {me['name']} ({me['role']}); saved to {path}")
    if pinned is None:
        out.hint(
            f"pinned the ledger key {served['public_key']} served now; compare it with the "
            "one the operator publishes"
        )
    out.result(
        {
            "url": url.rstrip("/"),
            "name": me["name"],
            "role": me["role"],
            "config": str(path),
            "origin": served.get("origin"),
            "public_key": served["public_key"],
        }
    )
