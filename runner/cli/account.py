"""Your account on a server: `c2d login` (check a token, save it, pin the ledger's key),
`c2d whoami` and `c2d logout`.

The token is a secret: `login --with-token` reads it from stdin, so it never sits in the
shell's history or in `ps`; typed at a terminal, it is asked for without echo. A token given
as an argument still works, with a warning saying where it now is.
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from runner.cli.options import ANYONE
from runner.cli.output import JsonFlag, Output
from runner.cli.session import connect, connection, globals_of
from runner.client.config import (
    ClientConfig,
    ClientEnv,
    check_url,
    config_path,
    remove_config,
    save_config,
)
from runner.errors import IntegrityError, UsageError

app = typer.Typer()
MAX_TOKEN = 4096


def _read_token(token: str | None, with_token: bool, out: Output) -> str:
    """The token from the argument, stdin (`--with-token`) or a prompt at a terminal."""
    if token is not None and with_token:
        raise UsageError("give the token either on stdin with --with-token or as TOKEN, not both")
    if token is not None:
        out.warn(
            "a token given as an argument stays in your shell's history and is visible in "
            "`ps`; next time pipe it in: `c2d login URL --with-token < FILE`"
        )
        return token
    if sys.stdin.isatty():
        import getpass

        given = getpass.getpass("token (not shown): ").strip()
    elif with_token:
        given = sys.stdin.read(MAX_TOKEN + 1)
        if len(given) > MAX_TOKEN:
            raise UsageError(f"stdin holds more than {MAX_TOKEN} characters; is it the token?")
        given = given.strip()
    else:
        raise UsageError("no token: pipe it in with `c2d login URL --with-token < FILE`")
    if not given or any(c.isspace() for c in given):
        raise UsageError("the token read is empty or has spaces in it; give the token alone")
    return given


@app.command(rich_help_panel=ANYONE)
def login(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(metavar="URL", help="API URL, e.g. http://127.0.0.1:8700")],
    token: Annotated[
        str | None,
        typer.Argument(
            metavar="[TOKEN]",
            help="Your API token (from `c2d user add`); better on stdin with --with-token.",
            show_default=False,
        ),
    ] = None,
    with_token: Annotated[
        bool,
        typer.Option("--with-token", help="Read the token from stdin (not argv, not history)."),
    ] = False,
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
    """Check the token against URL, then save both (and the ledger key) for later commands."""
    from runner.client.api import Client
    from runner.client.ledger_check import read_public_key

    out = Output.start(json_out)
    url = check_url(url)
    secret = _read_token(token, with_token, out)
    pinned = read_public_key(key) if key else None
    with Client(url, secret, globals_of(ctx).timeout) as client:
        me = client.me()
        served = client.public_key()
    served_key = base64.b64decode(served["public_key"])
    if pinned is not None and pinned != served_key:
        raise IntegrityError(
            f"{url} serves ledger key {served['public_key']}, not the key in {key}; "
            "nothing was saved; ask the operator which key is right"
        )
    path = config_path(ClientEnv.read())
    save_config(path, ClientConfig(url=url, token=secret, public_key=served["public_key"]))
    out.say(f"logged in to {url} as {me['name']} ({me['role']}); saved to {path}")
    if pinned is None:
        out.hint(
            f"pinned the ledger key {served['public_key']} served now; compare it with the "
            "one the operator publishes"
        )
    out.result(
        {
            "url": url,
            "name": me["name"],
            "role": me["role"],
            "config": str(path),
            "origin": served.get("origin"),
            "public_key": served["public_key"],
        }
    )


@app.command(rich_help_panel=ANYONE)
def whoami(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """Show who the token belongs to, on which server, and which ledger key is pinned."""
    out = Output.start(json_out)
    conn = connection(ctx, out)
    with connect(ctx, out) as client:
        me = client.me()
    doc: dict[str, Any] = {
        "url": conn.url,
        "name": me["name"],
        "role": me["role"],
        "pinned_key": conn.public_key,
    }
    out.fields(
        [
            ("user", f"{me['name']} ({me['role']})"),
            ("server", conn.url),
            ("ledger key", conn.public_key or "(none pinned: `c2d login --key FILE`)"),
        ]
    )
    out.result(doc, str(me["name"]))


@app.command(rich_help_panel=ANYONE)
def logout(json_out: JsonFlag = False) -> None:
    """Forget the saved server, token and pinned key (the file `c2d login` wrote)."""
    out = Output.start(json_out)
    path = config_path(ClientEnv.read())
    removed = remove_config(path)
    if removed:
        out.say(f"logged out: removed {path}")
        out.hint("the token itself stays valid on the server; an admin can make you a new one")
    else:
        out.say(f"not logged in: there is no {path}")
    out.result({"config": str(path), "removed": removed})
