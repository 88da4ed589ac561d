"""The `c2d` command line: researchers, data owners and operators all start here.

`main()` is the console script. `runner.cli.main` holds the root command, mounts one module per
group of commands (account, researcher, fetch, run_local, owner, datasets, ledger, operator) and
turns errors into exit codes; output, session, options, config and views are shared helpers.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Run `c2d` with the process arguments and exit with its documented exit code."""
    # httpx's package imports its own command line (`httpx._main`: click, rich's progress and
    # pygments) whenever click and rich are installed, and falls back to a stub when that
    # import fails. `c2d` never uses httpx's command line; blocking it spares every command
    # that talks to the API the import (a third of `c2d status`'s start-up, measured).
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    from runner.cli.main import run

    sys.exit(run())
