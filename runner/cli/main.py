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

import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.exceptions import Abort, TyperException

from ledger.kinds import EXIT_CODE, ExitCode, kind_of
from runner.cli.options import OWNER
from runner.cli.output import Output
from runner.cli.session import Globals

EPILOG = (
    "Exit codes: 0 ok; 1 the job failed or a verification failed; 2 usage or validation error "
    "(or a step the job's state does not allow yet); "
    "3 not found; 4 not allowed (or no valid token); 5 a service is unreachable. "
    "Server and token come from --url/--token, else C2D_URL/C2D_TOKEN, else the file "
    "written by `c2d login`."
)


app = typer.Typer(
    name="c2d",
    help="c2d runs approved code beside private data and records every step in a ledger.",
    epilog=EPILOG,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
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


def mount() -> None:
    """Mount every command module's group on the root (once)."""
    if app.registered_groups:
        return
    from runner.cli import (
        account,
        datasets,
        fetch,
        hosts,
        ledger,
        operator,
        owner,
        researcher,
        run_local,
    )

    for module in (account, researcher, fetch, run_local, owner, ledger, operator, hosts):
        app.add_typer(module.app)
    app.add_typer(datasets.app, name="dataset", rich_help_panel=OWNER)


def run(argv: Sequence[str] | None = None) -> int:
    """Run `c2d` with `argv` (default: the process arguments); return the exit code."""
    mount()
    Output.reset()
    command = typer.main.get_command(app)
    args = list(sys.argv[1:] if argv is None else argv)
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
