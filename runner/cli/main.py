"""The root `c2d` command: its options, the command modules it mounts, and the one place errors
become exit codes.

Each command module has a Typer group of its own (`app`) and imports no other command module;
this module mounts them all. Every error in c2d carries a `kind` (`ledger.kinds.ErrorKind`);
`ledger.kinds.EXIT_CODE` is the only mapping from a kind to an exit code, and `run` the only
place an error is printed. With `--json` an
error is also one JSON document on stdout (`{"error": {"kind", "message", "exit_code"}}`),
unless the command already printed its document.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup
from typer.exceptions import Abort, TyperException

from ledger.kinds import EXIT_CODE, ExitCode, kind_of
from runner.cli import command_words
from runner.cli.options import ANYONE, OPERATOR, OWNER, RESEARCHER
from runner.cli.output import Output
from runner.cli.session import Globals

EPILOG = (
    "Exit codes: 0 ok; 1 the job failed or a verification failed; 2 usage or validation error "
    "(or a step the job's state does not allow yet); "
    "3 not found; 4 not allowed (or no valid token); 5 a service is unreachable. "
    "Server and token come from --url/--token, else C2D_URL/C2D_TOKEN, else the file "
    "written by `c2d login`."
)


class PanelGroup(TyperGroup):
    """Plain help (click's, no rich), with commands grouped by who runs them as the panels
    say: typer's rich help imports a markdown renderer and rich's traceback machinery, more
    than all the rest of `c2d --help` takes."""

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        panels: dict[str, list[tuple[str, str]]] = {}
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is None or command.hidden:
                continue
            panel = getattr(command, "rich_help_panel", None) or "Commands"
            panels.setdefault(panel, []).append((name, command.get_short_help_str(limit=120)))
        order = [ANYONE, RESEARCHER, OWNER, OPERATOR]
        for panel in sorted(panels, key=lambda p: order.index(p) if p in order else len(order)):
            with formatter.section(panel):
                formatter.write_dl(panels[panel])


def new_app() -> typer.Typer:
    """An empty root `c2d` command (its options, no command modules yet)."""
    root_app = typer.Typer(
        name="c2d",
        cls=PanelGroup,
        help="c2d runs approved code beside private data and records every step in a ledger.",
        epilog=EPILOG,
        no_args_is_help=True,
        add_completion=True,
        rich_markup_mode=None,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    root_app.callback()(root)
    return root_app


def version() -> str:
    """The installed c2d version."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("c2d")
    except PackageNotFoundError:
        return "unknown"


def _show_version(value: bool) -> None:
    if value:
        sys.stdout.write(f"c2d {version()}\n")
        raise typer.Exit(ExitCode.OK)


def root(
    ctx: typer.Context,
    url: Annotated[
        str | None, typer.Option("--url", help="API URL (default: C2D_URL or `c2d login`).")
    ] = None,
    token: Annotated[
        str | None, typer.Option("--token", help="API token (default: C2D_TOKEN or `c2d login`).")
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds to wait for each API answer.")
    ] = 30.0,
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_show_version, help="Print c2d's version."
        ),
    ] = False,
) -> None:
    """c2d runs approved code beside private data and records every step in a ledger."""
    ctx.obj = Globals(url=url, token=token, timeout=timeout)


def report(exc: BaseException) -> ExitCode:
    """Print `exc` for people (and as JSON with --json); return its exit code."""
    kind = kind_of(exc)
    code = EXIT_CODE[kind]
    message = str(exc) or type(exc).__name__
    out = Output.current() or Output(json_mode=False)
    out.error(message)
    extra = {k: getattr(exc, k) for k in ("file", "field", "allowed") if getattr(exc, k, None)}
    if extra.get("field") or extra.get("allowed"):
        out.say(
            f"  file: {extra.get('file', '-')}  field: {extra.get('field', '-')}  "
            f"allowed: {extra.get('allowed', '-')}"
        )
    if out.json_mode and not out.emitted:
        error: dict[str, Any] = {"kind": str(kind), "message": message, "exit_code": int(code)}
        out.result({"error": {**error, **extra}})
    return code


MODULES = (
    "account", "keys", "researcher", "fetch", "run_local", "scaffold", "owner", "ledger",
    "operator", "hosts", "backups",
)  # fmt: skip
"""The command modules, in the order their commands are listed (``datasets`` is mounted as
the group `dataset`)."""
HOME = {
    "login": "account", "whoami": "account", "logout": "account", "token": "account",
    "key": "keys",
    "submit": "researcher", "job-image": "researcher", "jobs": "researcher",
    "status": "researcher", "cancel": "researcher",
    "fetch": "fetch", "run": "run_local", "new": "scaffold", "schema": "scaffold",
    "review": "owner", "approve": "owner", "reject": "owner", "release": "owner",
    "trust": "owner", "logs": "owner", "dataset": "datasets",
    "ledger": "ledger", "receipt": "ledger",
    "init": "operator", "server": "operator", "worker": "operator", "up": "operator",
    "user": "operator", "users": "operator", "image": "operator", "env": "operator",
    "host": "hosts", "hosts": "hosts",
    "backup": "backups", "restore": "backups",
}  # fmt: skip
"""Which module holds each command, so that one command loads and builds only its module."""


def wanted(args: Sequence[str]) -> str | None:
    """The module the command line asks for, or None when all are needed (help, an unknown
    command, shell completion)."""
    if any(k.endswith("_COMPLETE") and k.startswith("_") for k in os.environ):
        return None
    words = command_words(args)
    return HOME.get(words[0]) if words else None


def mount(root_app: typer.Typer, only: str | None = None) -> typer.Typer:
    """Mount the command modules (or only ``only``) on ``root_app``; return it."""
    import importlib

    for name in (only,) if only else (*MODULES, "datasets"):
        module = importlib.import_module(f"runner.cli.{name}")
        if name == "datasets":
            root_app.add_typer(module.app, name="dataset", rich_help_panel=OWNER)
        else:
            root_app.add_typer(module.app)
    return root_app


def run(argv: Sequence[str] | None = None) -> int:
    """Run `c2d` with `argv` (default: the process arguments); return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--version"]:
        sys.stdout.write(f"c2d {version()}\n")
        return ExitCode.OK
    Output.reset()
    command = typer.main.get_command(mount(new_app(), wanted(args)))
    try:
        rv = command.main(args, prog_name="c2d", standalone_mode=False)
    except TyperException as exc:
        # Typer's own usage errors (unknown command, missing argument, bad option value).
        if sys.stderr.isatty():
            from typer import rich_utils

            rich_utils.rich_format_error(exc)  # type: ignore[arg-type]
        else:
            show = getattr(exc, "show", None)
            if callable(show):
                show()
            else:
                sys.stderr.write(f"error: {exc.format_message()}\n")
        return ExitCode.USAGE if exc.exit_code == ExitCode.USAGE else ExitCode.FAILED
    except (Abort, KeyboardInterrupt):
        sys.stderr.write("interrupted\n")
        return ExitCode.INTERRUPTED
    except Exception as exc:
        if getattr(exc, "kind", None) is None and not isinstance(exc, OSError):
            raise  # a bug: let the traceback show
        return report(exc)
    return int(rv) if isinstance(rv, int) else ExitCode.OK
