"""Your account on a server: `c2d login` (check a token, save it, pin the ledger's key, make
and register your signing key: ``runner.client.keys``),
`c2d whoami`, `c2d logout` and `c2d token rotate`.

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
    Connection,
    check_url,
    config_path,
    load_config,
    remove_config,
    save_config,
)
from runner.errors import ClientConfigError, IntegrityError, UsageError

app = typer.Typer()
token_app = typer.Typer(help="Your API token.", no_args_is_help=True)
app.add_typer(token_app, name="token", rich_help_panel=ANYONE)
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
    """Check the token against URL, then save both (and the ledger key) for later commands;
    make your signing key if you have none, and register it with your user."""
    from runner.client.api import Client
    from runner.client.ledger_check import read_public_key

    out = Output.start(json_out)
    url = check_url(url)
    secret = _read_token(token, with_token, out)
    pinned = read_public_key(key) if key else None
    from runner.client.keys import ensure_registered, key_path

    with Client(url, secret, globals_of(ctx).timeout) as client:
        me = client.me()
        served = client.public_key()
        served_key = base64.b64decode(served["public_key"])
        if pinned is not None and pinned != served_key:
            raise IntegrityError(
                f"{url} serves ledger key {served['public_key']}, not the key in {key}; "
                "nothing was saved; ask the operator which key is right"
            )
        # Your own key, made here and never sent: what your actions will be signed with.
        signing = ensure_registered(
            client, key_path(ClientEnv.read()), me["name"], served["origin"]
        )
    path = config_path(ClientEnv.read())
    save_config(path, ClientConfig(url=url, token=secret, public_key=served["public_key"]))
    from runner.client import signer_cache

    signer_cache.clear(ClientEnv.read())  # a new login: the signer asks the server afresh
    out.say(f"logged in to {url} as {me['name']} ({me['role']}); saved to {path}")
    if signing.done == "kept":
        out.say(f"your signing key {signing.fingerprint} ({signing.path}) is registered already")
    else:
        made = "made and registered" if signing.done == "created" else "registered"
        out.say(f"{made} your signing key {signing.fingerprint}; it stays in {signing.path}")
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
            "signing_key": signing.document(),
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
    from runner.client import signer_cache

    path = config_path(ClientEnv.read())
    removed = remove_config(path)
    signer_cache.clear(ClientEnv.read())
    if removed:
        out.say(f"logged out: removed {path}")
        out.hint(
            "the token itself stays valid on the server; if it may have leaked, replace it with "
            "`c2d token rotate` (or ask an admin: `c2d token rotate --user NAME`)"
        )
    else:
        out.say(f"not logged in: there is no {path}")
    out.result({"config": str(path), "removed": removed})


def _saved_login(conn: Connection) -> ClientConfig | None:
    """The saved login this command's token came from, if it did (same server, same token)."""
    saved = load_config(conn.config_file)
    if saved is None or saved.token != conn.token or saved.url != conn.url.rstrip("/"):
        return None
    return saved


@token_app.command("rotate")
def token_rotate(
    ctx: typer.Context,
    user: Annotated[
        str | None,
        typer.Option("--user", help="Rotate this user's token instead (admins); printed once."),
    ] = None,
    print_token: Annotated[
        bool,
        typer.Option("--print-token", help="Also print your new token on stdout (a secret)."),
    ] = False,
    json_out: JsonFlag = False,
) -> None:
    """Replace a token with a new one; the old one stops working at once.

    Your own new token goes into the login `c2d login` saved, so your next command works; it
    is printed only with --print-token. Another user's (--user, admins) is printed once, for
    you to hand over.
    """
    out = Output.start(json_out)
    conn = connection(ctx, out)
    with connect(ctx, out) as client:
        if user is not None and user != client.me()["name"]:
            rotated = client.rotate_token(user)
            out.say(
                f"rotated the token of {rotated['role']} {rotated['name']}: the old one no "
                "longer works; hand them the new one (shown once)"
            )
            out.result(rotated, rotated["token"])
            return
        saved = _saved_login(conn)
        if saved is None and not print_token:
            raise UsageError(
                "your token comes from C2D_TOKEN or --token, which c2d cannot change, so the new "
                "token would be lost; rerun with --print-token to have it printed once (then put "
                "it where C2D_TOKEN comes from), or save your login with `c2d login` first"
            )
        rotated = client.rotate_token()
    out.say(f"rotated the token of {rotated['name']}: the old one no longer works")
    doc = {"name": rotated["name"], "role": rotated["role"], "config": None}
    if saved is not None:
        try:
            save_config(
                conn.config_file, ClientConfig(saved.url, rotated["token"], saved.public_key)
            )
        except (OSError, ClientConfigError) as exc:
            out.warn(f"could not save the new token to {conn.config_file} ({exc}); it follows")
            print_token = True
        else:
            doc["config"] = str(conn.config_file)
            out.say(f"saved the new token to {conn.config_file}")
    if ClientEnv.read().token or globals_of(ctx).token:
        out.warn("C2D_TOKEN or --token still holds the old token; replace it with the new one")
    if print_token:
        doc["token"] = rotated["token"]
    out.result(doc, rotated["token"] if print_token else None)
