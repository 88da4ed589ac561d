"""Operator commands: create the state folder, run the control plane, users and images.

`init`, `server` and `up` build the server-side `Settings` (C2D_ environment, then these flags)
and hand them to the control plane (`runner.control.install`, `.serve`) and, for `up`, to the
data host `local` (`runner.host.agent`), imported only when such a command runs so that every
other command works without their dependencies loaded.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from runner.cli.options import OPERATOR, build_settings
from runner.cli.output import JsonFlag, Output, short_time
from runner.cli.session import connect
from runner.errors import ServiceUnavailable

PANEL = OPERATOR
HomeOpt = Annotated[
    Path | None, typer.Option("--home", help="State folder (default: C2D_HOME or ~/.c2d).")
]

user_app = typer.Typer(help="Manage API users.", no_args_is_help=True)
image_app = typer.Typer(help="Build job environment images.", no_args_is_help=True)
env_app = typer.Typer(help="Job environments.", no_args_is_help=True)
app = typer.Typer()
app.add_typer(user_app, name="user", rich_help_panel=PANEL)
app.add_typer(image_app, name="image", rich_help_panel=PANEL)
app.add_typer(env_app, name="env", rich_help_panel=PANEL)


@app.command(rich_help_panel=PANEL)
def init(
    home: HomeOpt = None,
    origin: Annotated[
        str | None, typer.Option("--origin", help="The ledger's name in its checkpoints.")
    ] = None,
    local_host: Annotated[
        bool,
        typer.Option(
            "--local-host/--no-local-host",
            help="Also enroll a data host `local` in HOME/hosts/local, for one machine "
            "(`c2d up`); without it, data hosts on other machines enroll (`c2d host add`).",
        ),
    ] = True,
    json_out: JsonFlag = False,
) -> None:
    """Create the state folder, the ledger key and an admin token (never overwrites)."""
    out = Output.start(json_out)
    settings = build_settings(home=home, origin=origin)
    from runner.control.install import LOCAL_HOST, init_home, local_url

    token = init_home(settings, LOCAL_HOST if local_host else None)
    url = local_url(settings)
    if local_host:
        out.say(
            f"created {settings.home} with its data host `{LOCAL_HOST}` (state in "
            f"{settings.hosts_dir / LOCAL_HOST}); the admin token is printed once, on stdout"
        )
        out.hint(
            f"start the API and the local host with `c2d up`, then "
            f"`c2d login {url} --with-token` and paste the token"
        )
    else:
        out.say(
            f"created {settings.home} without a data host; the admin token is printed once, "
            "on stdout"
        )
        out.hint(
            f"start the API with `c2d server`, `c2d login {url}`, then add data hosts "
            "with `c2d host add NAME`"
        )
    hosts = [LOCAL_HOST] if local_host else []
    out.result({"home": str(settings.home), "token": token, "url": url, "hosts": hosts}, token)


@app.command(rich_help_panel=PANEL)
def server(
    home: HomeOpt = None,
    bind: Annotated[str | None, typer.Option("--bind", help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port to listen on.")] = None,
) -> None:
    """Run the control plane (the HTTP API and its reconciler) in the foreground."""
    from runner.control.serve import serve

    serve(build_settings(home=home, bind=bind, port=port))


@app.command(rich_help_panel=PANEL, hidden=True)
def worker(
    home: HomeOpt = None,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Jobs at once.")] = 1,
) -> None:
    """Run a data host's agent in the foreground (`c2d host start` does the same)."""
    from runner.host.agent import run_agent
    from runner.host.identity import find_host_home

    settings = build_settings(home=home)
    run_agent(build_settings(home=find_host_home(settings.home)), concurrency)


@app.command(rich_help_panel=PANEL)
def up(
    home: HomeOpt = None,
    bind: Annotated[str | None, typer.Option("--bind", help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port to listen on.")] = None,
) -> None:
    """Run the control plane (API and reconciler) and the data host `local`, for one machine."""
    from runner.control.install import local_url
    from runner.control.serve import up as run_up
    from runner.host.agent import run_agent

    settings = build_settings(home=home, bind=bind, port=port)
    host_home = settings.hosts_dir / "local"
    host = build_settings(home=host_home, api_url=local_url(settings))
    run_up(settings, lambda: run_agent(host, 1))


class Role(StrEnum):
    """API roles."""

    researcher = "researcher"
    owner = "owner"
    admin = "admin"


@user_app.command("add")
def user_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The user's name.")],
    role: Annotated[Role, typer.Option("--role", help="What the user may do.")],
    json_out: JsonFlag = False,
) -> None:
    """Create a user (admin only); print their token once, on stdout."""
    out = Output.start(json_out)
    with connect(ctx, out) as client:
        user = client.add_user(name, role.value)
    out.say(f"created {user['role']} {user['name']}; hand them the token (shown once)")
    out.result(user, user["token"])


@app.command("users", rich_help_panel=PANEL)
def users(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """List the users (admin only): role, when added, whether revoked, key fingerprints."""
    out = Output.start(json_out)
    with connect(ctx, out) as client:
        found = client.users()
    rows = [
        [
            u["name"],
            u["role"],
            short_time(u.get("created")),
            f"{short_time(u['revoked'])} by {u.get('revoked_by')}" if u.get("revoked") else "-",
            ", ".join(u.get("key_fingerprints") or []) or "-",
        ]
        for u in found
    ]
    columns = ["user", "role", "added (UTC)", "revoked (UTC)", "keys"]
    out.table(columns, rows, empty="no users")
    out.result(found)


@user_app.command("revoke")
def user_revoke(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The user to revoke.")],
    reason: Annotated[
        str, typer.Option("--reason", help="Why; it goes into the ledger (plain text).")
    ] = "",
    json_out: JsonFlag = False,
) -> None:
    """Revoke a user for good (admin only): their token fails from the next request on."""
    out = Output.start(json_out)
    with connect(ctx, out) as client:
        user = client.revoke_user(name, reason)
    out.say(f"revoked {user['role']} {user['name']}: their token no longer works")
    out.hint("the name is not given out again; to give the person access, add a new name")
    out.result(user, user["name"])


@image_app.command("build")
def image_build(
    name: Annotated[str, typer.Option("--name", help="Environment to build.")] = "python-ml",
    base: Annotated[
        str | None, typer.Option("--base", help="Registry base image, e.g. python:3.11-slim.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if up to date.")] = False,
    json_out: JsonFlag = False,
) -> None:
    """Build a job environment image on this host's Docker engine (progress on stderr)."""
    import docker
    import docker.errors

    from runner.host.images.environments import build_environment

    out = Output.start(json_out)
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        raise ServiceUnavailable(
            f"no Docker engine answers ({exc}); start it with `make services`"
        ) from exc
    try:
        result = build_environment(client, name, base=base, force=force, progress=out.say)
    finally:
        client.close()
    out.result(
        {
            "name": result.name,
            "tag": result.tag,
            "image_id": result.image_id,
            "recipe": result.recipe,
            "built": result.built,
            "seconds": round(result.seconds, 3),
        },
        result.image_id,
    )


@env_app.command("list")
def env_list(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """List the job environments the data hosts provide."""
    out = Output.start(json_out)
    with connect(ctx, out) as client:
        envs = client.environments()
    rows = [
        [
            e["name"],
            str(e.get("image_id") or "not built")[:19],
            ", ".join(f"{k}=={v}" for k, v in sorted((e.get("pins") or {}).items())),
        ]
        for e in envs
    ]
    out.table(["name", "image", "pins"], rows, empty="no environments")
    out.result(envs)
