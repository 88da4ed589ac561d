"""The `c2d` command line: researchers, data owners and operators all start here.

`main()` is the console script. Commands live in one module per group (researcher, owner,
operator, ledger, fetch, session); `runner.cli.app` holds the exit codes and error reporting.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Run `c2d` with the process arguments and exit with its documented exit code."""
    from runner.cli.app import run

    sys.exit(run())
