"""The root `c2d` command: global options, the exit codes, and the one place errors become them.

Every error in c2d carries a `kind` (see the shared rules); `EXIT_BY_KIND` is the only mapping
from a kind to an exit code, and `run` the only place an error is printed. With `--json` an
error is also one JSON document on stdout (`{"error": {"kind", "message", "exit_code"}}`),
unless the command already printed its document.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Annotated, Any

import typer
from typer.exceptions import Abort, TyperException

from runner.cli.output import Output


class ExitCode(IntEnum):
    """What `c2d` returns; scripts may rely on these."""

    OK = 0
    FAILED = 1  # the job failed, or a verification (digest, receipt, ledger) failed
    USAGE = 2  # bad usage or input (a job.yaml error, a bad flag, a state conflict)
    NOT_FOUND = 3  # no such job, dataset or user (or not visible to you)
    NOT_ALLOWED = 4  # no valid token, or your role may not do this
    UNAVAILABLE = 5  # the API, Redis or the Docker engine does not answer
    INTERRUPTED = 130  # Ctrl-C


EXIT_BY_KIND: dict[str, ExitCode] = {
    "failed": ExitCode.FAILED,
    "invalid": ExitCode.USAGE,
    "conflict": ExitCode.USAGE,
    "too_large": ExitCode.USAGE,
    "not_found": ExitCode.NOT_FOUND,
    "not_allowed": ExitCode.NOT_ALLOWED,
    "unauthenticated": ExitCode.NOT_ALLOWED,
    "unavailable": ExitCode.UNAVAILABLE,
}


def exit_code_for(kind: str) -> ExitCode:
    """The exit code of an error of `kind` (an unknown kind counts as a failure)."""
    return EXIT_BY_KIND.get(kind, ExitCode.FAILED)


EPILOG = (
    "Exit codes: 0 ok; 1 the job failed or a verification failed; 2 usage or validation error "
    "(or a step the job's state does not allow yet); "
    "3 not found; 4 not allowed (or no valid token); 5 a service is unreachable. "
    "Server and token come from --url/--token, else C2D_URL/C2D_TOKEN, else the file "
    "written by `c2d login`."
)


@dataclass(frozen=True)
class Globals:
    """The root options, handed to every command through the click context."""

    url: str | None
    token: str | None
    timeout: float


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


def globals_of(ctx: typer.Context) -> Globals:
    """The root options of this invocation (defaults when a test calls a command directly)."""
    root_ctx = ctx.find_root()
    obj = root_ctx.obj
    return obj if isinstance(obj, Globals) else Globals(None, None, 30.0)


def report(exc: BaseException) -> ExitCode:
    """Print `exc` for people (and as JSON with --json); return its exit code."""
    kind = getattr(exc, "kind", None)
    if not isinstance(kind, str):
        kind = "failed"
    code = exit_code_for(kind)
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
        error: dict[str, Any] = {"kind": kind, "message": message, "exit_code": int(code)}
        out.result({"error": {**error, **extra}})
    return code


def run(argv: Sequence[str] | None = None) -> int:
    """Run `c2d` with `argv` (default: the process arguments); return the exit code."""
    # Importing the command modules registers their commands on `app`.
    from runner.cli import (  # noqa: F401
        develop,
        fetch,
        ledger,
        operator,
        owner,
        researcher,
        run_local,
        session,
    )

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
