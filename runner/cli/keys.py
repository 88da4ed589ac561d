"""Your signing keys: `c2d key list`, `c2d key rotate` and `c2d key revoke`.

`c2d login` makes your key and registers it (``runner.client.keys``); these commands show the
keys the server holds for you, replace yours by a new one, or revoke one that was lost or may
have leaked. Revoked keys stay listed, and in the ledger.
"""

from __future__ import annotations

from typing import Annotated

import typer

from runner.cli.options import ANYONE
from runner.cli.output import JsonFlag, Output, short_time
from runner.cli.session import connect
from runner.client.config import ClientEnv

app = typer.Typer()
key_app = typer.Typer(help="Your signing keys.", no_args_is_help=True)
app.add_typer(key_app, name="key", rich_help_panel=ANYONE)


@key_app.command("list")
def key_list(
    ctx: typer.Context,
    user: Annotated[
        str | None, typer.Option("--user", help="List this user's keys instead (admins).")
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """List your keys (or another user's), revoked ones too; `*` marks this machine's."""
    out = Output.start(json_out)
    with connect(ctx, out) as client:
        found = client.user_keys(user)
    local = _local_public_key(out) if user is None else None
    rows = [
        [
            ("* " if k["public_key"] == local else "  ") + k["fingerprint"],
            short_time(k["registered"]),
            f"{short_time(k['revoked'])} by {k['revoked_by']}" if k.get("revoked") else "-",
        ]
        for k in found
    ]
    out.table(["key", "registered (UTC)", "revoked (UTC)"], rows, empty="no keys")
    if user is None and not found:
        out.hint("`c2d login URL --with-token` makes your key and registers it")
    out.result(found)


@key_app.command("rotate")
def key_rotate(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """Replace your key by a new one: both sign the change, the old one is revoked at once."""
    from runner.client import signer_cache
    from runner.client.keys import key_path, rotate

    out = Output.start(json_out)
    with connect(ctx, out) as client:
        me = client.me()
        origin = client.public_key()["origin"]
        try:
            done = rotate(client, key_path(ClientEnv.read()), me["name"], origin)
        finally:  # even a failed rotation may have revoked the old key on the server
            signer_cache.clear(ClientEnv.read())
    out.say(f"rotated your key: {done.replaced} is revoked, {done.fingerprint} signs from now on")
    out.result(done.document(), done.fingerprint)


@key_app.command("revoke")
def key_revoke(
    ctx: typer.Context,
    fingerprint: Annotated[
        str, typer.Argument(metavar="FINGERPRINT", help="The key, as `c2d key list` shows it.")
    ],
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the ledger).")] = "",
    json_out: JsonFlag = False,
) -> None:
    """Revoke one of your keys (admins: anyone's); it can sign nothing from now on."""
    from runner.client import signer_cache
    from runner.client.keys import key_path

    out = Output.start(json_out)
    with connect(ctx, out) as client:
        try:
            key = client.revoke_key(fingerprint, reason)
        finally:  # the signer must ask the server again whether this machine's key still signs
            signer_cache.clear(ClientEnv.read())
    out.say(f"revoked key {key['fingerprint']} of {key['user']}; it stays listed as revoked")
    if _local_public_key() == key["public_key"]:
        path = key_path(ClientEnv.read())
        out.hint(
            f"that was the key on this machine ({path}): move it away, then `c2d login` makes "
            "and registers a new one"
        )
    out.result(key, key["fingerprint"])


def _local_public_key(out: Output | None = None) -> str | None:
    """The public half of the key on this machine, if it has a usable one (else why not, as a
    hint on ``out``)."""
    from jobs.user_keys import public_key_text
    from runner.client.keys import key_path, load_key
    from runner.errors import KeyFileError

    try:
        return public_key_text(load_key(key_path(ClientEnv.read())))
    except KeyFileError as exc:
        if out is not None:
            out.hint(str(exc))
        return None
