"""Connecting to the API: the root options and the `connect` every API command starts with.

Nothing heavy is imported here: `c2d --help` loads this module, and the HTTP client (httpx)
loads only when a command connects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import typer

from runner.cli.output import Output
from runner.client.config import ClientEnv, Connection, resolve_connection
from runner.errors import NoToken

if TYPE_CHECKING:
    from runner.client.api import Client


@dataclass(frozen=True)
class Globals:
    """The root options, handed to every command through the click context."""

    url: str | None
    token: str | None
    timeout: float


def globals_of(ctx: typer.Context) -> Globals:
    """The root options of this invocation (defaults when a test calls a command directly)."""
    root_ctx = ctx.find_root()
    obj = root_ctx.obj
    return obj if isinstance(obj, Globals) else Globals(None, None, 30.0)


def connection(ctx: typer.Context, out: Output) -> Connection:
    """The server and token of this invocation (flags > environment > config file)."""
    opts = globals_of(ctx)
    conn = resolve_connection(opts.url, opts.token, ClientEnv.read())
    for warning in conn.warnings:
        out.warn(warning)
    return conn


def connect(ctx: typer.Context, out: Output, *, need_token: bool = True) -> Client:
    """A client for this invocation; refuses early when a token is needed and none is set."""
    from runner.client.api import Client

    conn = connection(ctx, out)
    if need_token and not conn.token:
        raise NoToken(
            "no API token: run `c2d login URL --with-token` once (the token on stdin), or set "
            "C2D_TOKEN (or pass --token)"
        )
    from runner.client.signing import Signer

    # Actions sign with the key `c2d login` made; without one they go unsigned, said once.
    signer = Signer(ClientEnv.read(), on_unsigned=out.warn)
    return Client(conn.url, conn.token, globals_of(ctx).timeout, signer=signer)
