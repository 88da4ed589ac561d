"""How the CLI shows a job's pre-approval dry run (`c2d review` puts it first)."""

from __future__ import annotations

import json
from typing import Any

from runner.cli.output import Output


def dryrun_lines(dryrun: dict[str, Any] | None) -> list[tuple[str, Any]]:
    """The `key: value` lines of a dry run (`GET /v1/jobs/ID/dryrun` or review's `dryrun`)."""
    if dryrun is None:
        return [("dry run", "not run yet: the data host runs it soon after submission")]
    if dryrun.get("withheld") and "ok" not in dryrun:
        return [("dry run", dryrun.get("note"))]
    verdict = "ok" if dryrun["ok"] else "FAILED"
    seconds = dryrun.get("duration_s") or 0.0
    declared = ", ".join(dryrun.get("declared") or []) or "(metrics.json only)"
    mock = dryrun.get("mock_digest")
    rows = dryrun.get("max_rows")
    return [
        ("dry run", f"{verdict}: {dryrun['reason']} ({seconds:.1f} s, on mock data only)"),
        ("mock data", f"{mock} ({dryrun.get('level')}, at most {rows} rows)" if mock else None),
        ("declared", declared),
        ("produced", ", ".join(dryrun.get("produced") or []) or "nothing collected"),
        ("missing", ", ".join(dryrun.get("missing") or []) or None),
        ("not declared", ", ".join(dryrun.get("ignored") or []) or None),
        (
            "metrics",
            json.dumps(dryrun["metrics"], sort_keys=True) if dryrun.get("metrics") else None,
        ),
    ]


def show_dryrun(out: Output, dryrun: dict[str, Any] | None) -> None:
    """The dry run's verdict, what it left and the end of its log."""
    out.fields(dryrun_lines(dryrun))
    tail = (dryrun or {}).get("log_tail")
    if tail:
        cut = " (its end)" if dryrun and dryrun.get("log_truncated") else ""
        out.say(f"dry run log{cut}:")
        out.text_block(tail)
