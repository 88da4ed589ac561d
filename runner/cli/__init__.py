"""The `c2d` command line: researchers, data owners and operators all start here.

`main()` is the console script. `runner.cli.main` holds the root command, mounts one module per
group of commands (account, researcher, fetch, run_local, scaffold, owner, datasets, ledger,
operator, hosts) and turns errors into exit codes; output, session, options and views are
shared helpers.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Sequence

ROOT_VALUES = frozenset({"--url", "--token", "--timeout"})
"""The root options that take a value (the next argument)."""
LONG_RUNNING = frozenset({("server",), ("worker",), ("up",), ("host", "start")})
"""The commands that run until stopped (a service, not a person's command)."""


def command_words(args: Sequence[str]) -> list[str]:
    """The command line's first two words that are not options (the command and, for a
    group, its subcommand), the root options' values skipped: ``["host", "start"]``."""
    words: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in ROOT_VALUES:
            skip = not words  # a root option's value follows (only before the command)
        elif not arg.startswith("-"):
            words.append(arg)
            if len(words) == 2:
                break
    return words


def long_running(args: Sequence[str]) -> bool:
    """Whether ``args`` start a service (`server`, `worker`, `up`, `host start`)."""
    words = command_words(args)
    return tuple(words[:1]) in LONG_RUNNING or tuple(words[:2]) in LONG_RUNNING


def main() -> None:
    """Run `c2d` with the process arguments and exit with its documented exit code.

    A command of a person (not `server`, `worker`, `up`, `host start`) lives a second or less,
    so this process is set up for that, each measured by `bench/cli_bench.py`:

    - httpx's package imports its own command line (`httpx._main`: click, rich's progress,
      pygments) whenever those are installed, and falls back to a stub when that import
      fails; `c2d` never uses it, so it is blocked;
    - pydantic looks for plugins among every installed package's entry points the first time
      a model is built; `c2d` has none;
    - the cyclic garbage collector runs dozens of times while the imports build their
      objects, to find no garbage: it is off until the command ends;
    - tearing down the interpreter's modules took 50-70 ms after the work was done: once the
      output is flushed the process ends at once (`os._exit`; the files a command writes are
      closed and renamed into place before it returns).
    """
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    args = sys.argv[1:]
    short = not long_running(args)
    if short:
        gc.disable()
    from runner.cli.main import run

    code = run(args)
    if not short:
        sys.exit(code)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):  # `c2d jobs | head` closed the pipe
        pass
    os._exit(code)
