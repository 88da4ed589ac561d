"""Data hosts: `c2d host add` (admin), `c2d host enroll` and `c2d host start` (on the host),
`c2d hosts` (anyone signed in).

A data host is a machine beside data with its own state folder (`--home`, else C2D_HOME, else
~/.c2d; on a single machine the folder `hosts/local` under the control plane's). `enroll` makes
the host's key there and exchanges the one-time token for the host's credential; `start` runs
its agent (`runner.host.agent`), which only connects out, to the API and the broker.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from runner.cli.options import OPERATOR, OWNER, build_settings
from runner.cli.output import JsonFlag, Output
from runner.cli.session import connect
from runner.errors import SettingsError

app = typer.Typer()
host_app = typer.Typer(help="Add, enroll and run data hosts.", no_args_is_help=True)
app.add_typer(host_app, name="host", rich_help_panel=OPERATOR)

HomeOpt = Annotated[
    Path | None,
    typer.Option(
        "--home",
        help="The data host's state folder (default: C2D_HOME or ~/.c2d, or the one host "
        "under its hosts/).",
    ),
]


@host_app.command("add")
def host_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The host's name (its queue).")],
    renew: Annotated[
        bool,
        typer.Option("--renew", help="Let an existing host enroll again (its key stops working)."),
    ] = False,
    json_out: JsonFlag = False,
) -> None:
    """Add a data host (admin); print its one-time enrollment token once, on stdout."""
    out = Output.start(json_out)
    with connect(ctx, out) as client:
        host = client.add_host(name, renew=renew)
        url = client.url
    out.say(f"added data host {host['name']}; its enrollment token is printed once, on stdout")
    out.hint(
        f"on the data host: `c2d host enroll {url}` and paste the token, then `c2d host start`"
    )
    out.result(host, host["enroll_token"])


def _read_token(token: str | None, out: Output) -> str:
    if token:
        out.warn(
            "a token on the command line shows in `ps` and shell history; pipe it in instead "
            "(`c2d host enroll URL < token-file`)"
        )
        return token.strip()
    if sys.stdin.isatty():
        out.say("paste the enrollment token from `c2d host add`, then Enter:")
    line = sys.stdin.readline().strip()
    if not line:
        raise SettingsError(
            "no enrollment token: pipe it in (`c2d host enroll URL < token-file`) or paste it"
        )
    return line


@host_app.command("enroll")
def host_enroll(
    url: Annotated[str, typer.Argument(metavar="URL", help="The control plane's API URL.")],
    token: Annotated[
        str | None,
        typer.Argument(
            metavar="[TOKEN]",
            help="The one-time token from `c2d host add` (default: read from stdin).",
        ),
    ] = None,
    home: HomeOpt = None,
    json_out: JsonFlag = False,
) -> None:
    """Enroll this machine as the data host the token was made for: make its key (kept here,
    mode 0600, never sent), send the public key, keep the host's credential."""
    from runner.host.identity import enroll
    from runner.host.port_http import enroll_call

    out = Output.start(json_out)
    settings = build_settings(home=home)
    secret = _read_token(token, out)
    identity = enroll(settings, url, secret, enroll_call)
    out.say(
        f"enrolled data host {identity.name} with {url} (key {identity.fingerprint}); its "
        f"state is in {settings.home}"
    )
    out.hint("start its agent with `c2d host start`; register datasets with `c2d dataset add`")
    out.result(
        {
            "name": identity.name,
            "home": str(settings.home),
            "api_url": identity.api_url,
            "fingerprint": identity.fingerprint,
            "public_key": identity.public_key,
        },
        identity.name,
    )


@host_app.command("start")
def host_start(
    home: HomeOpt = None,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Jobs at once.")] = 1,
) -> None:
    """Run this data host's agent in the foreground (jobs, dry runs, images, uploads)."""
    from runner.host.agent import run_agent
    from runner.host.identity import find_host_home

    settings = build_settings(home=home)
    run_agent(build_settings(home=find_host_home(settings.home)), concurrency)


def _ago(stamp: str | None) -> str:
    if not stamp:
        return "never"
    from datetime import datetime

    seconds = time.time() - datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    return f"{max(0, round(seconds))} s ago"


@app.command("hosts", rich_help_panel=OWNER)
def hosts(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """List the data hosts: their keys' fingerprints, last hello and running jobs."""
    out = Output.start(json_out)
    with connect(ctx, out) as client:
        found = client.hosts()
    rows = [
        [
            h["name"],
            h.get("fingerprint") or "not enrolled",
            _ago(h.get("last_seen")),
            ", ".join(sorted(h.get("environments") or {})) or "-",
            ", ".join(h.get("running") or []) or "-",
        ]
        for h in found
    ]
    out.table(["host", "key", "last hello", "environments", "running"], rows, empty="no hosts")
    out.result(found)
