"""The `c2d` command line: researchers, data owners and operators all start here.

`main()` is the console script. `runner.cli.main` holds the root command, mounts one module per
group of commands (account, researcher, fetch, run_local, owner, datasets, ledger, operator) and
turns errors into exit codes; output, session, options, config and views are shared helpers.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Run `c2d` with the process arguments and exit with its documented exit code."""
    from runner.cli.main import run

    sys.exit(run())
