"""A dataset's automatic output checks on the command line: the options `c2d dataset add` and
`c2d dataset checks NAME` share, and how the checks and their results are shown.

The checks themselves run on the data host (`jobs.output_checks`, `runner.host.output_checks`);
here they are only settings (`OutputChecks` as a JSON document) and, for the owner, results.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import typer

from jobs.units import format_size, parse_size

PANEL = "Output checks (warn the owner before release)"

AllowTypes = Annotated[
    str | None,
    typer.Option(
        "--allow-types",
        metavar="SUFFIXES",
        help="Output file types allowed, e.g. .skops,.json (`any`: every type).",
        rich_help_panel=PANEL,
    ),
]
MaxFileSize = Annotated[
    str | None,
    typer.Option(
        "--max-file-size",
        metavar="SIZE",
        help="Largest single output file, e.g. 20MiB (`0`: no limit beyond the job's own).",
        rich_help_panel=PANEL,
    ),
]
MetricNames = Annotated[
    bool | None,
    typer.Option(
        "--metric-name-check/--no-metric-name-check",
        help="Warn about metric names that look like row data (SSN, e-mail, ids, free text).",
        rich_help_panel=PANEL,
    ),
]
MinCell = Annotated[
    int | None,
    typer.Option(
        "--min-cell",
        min=0,
        metavar="N",
        help="Warn about count-like metrics between 1 and N-1 (default 10; `0`: off).",
        rich_help_panel=PANEL,
    ),
]
MaxRows = Annotated[
    int | None,
    typer.Option(
        "--max-rows",
        min=0,
        metavar="N",
        help="Most lines a .csv/.tsv/.txt/.jsonl output may have (default 1000; `0`: off).",
        rich_help_panel=PANEL,
    ),
]


def merged_checks(
    current: dict[str, Any],
    allow_types: str | None,
    max_file_size: str | None,
    metric_names: bool | None,
    min_cell: int | None,
    max_rows: int | None,
) -> dict[str, Any]:
    """``current`` checks with the options given (``None``: unchanged) applied."""
    checks = dict(current)
    if allow_types is not None:
        types = [t.strip() for t in allow_types.split(",") if t.strip()]
        if types == ["any"]:
            checks["file_types"] = None
        elif not types:
            raise typer.BadParameter(
                "name suffixes such as .skops,.json", param_hint="--allow-types"
            )
        else:
            checks["file_types"] = [t if t.startswith(".") else "." + t for t in types]
    if max_file_size is not None:
        try:
            size = parse_size(max_file_size)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--max-file-size") from exc
        checks["max_file_bytes"] = size or None
    if metric_names is not None:
        checks["metric_names"] = metric_names
    if min_cell is not None:
        checks["min_cell"] = min_cell
    if max_rows is not None:
        checks["max_rows"] = max_rows or None
    return checks


def describe_checks(checks: dict[str, Any]) -> list[str]:
    """The settings, one line each, for people."""
    types = checks.get("file_types")
    size = checks.get("max_file_bytes")
    rows = checks.get("max_rows")
    cell = checks.get("min_cell")
    return [
        f"file types        {', '.join(types) if types else 'any'}",
        f"largest file      {format_size(size) if size else 'no limit beyond the job'}",
        f"metric names      {'checked' if checks.get('metric_names', True) else 'not checked'}",
        f"min cell size     {cell if cell else 'off'}",
        f"most lines        {rows if rows else 'off'}",
    ]


def check_rows(results: Sequence[dict[str, Any]]) -> list[tuple[str, Any]]:
    """The output checks' results as ``(label, value)`` lines, for the owner: a summary, then
    each failed check with what failed (escaped by ``Output.fields``)."""
    if not results:
        return []
    bad = [r for r in results if not r.get("passed")]
    if not bad:
        return [("checks", f"all {len(results)} passed")]
    rows: list[tuple[str, Any]] = [
        ("checks", f"{len(bad)} of {len(results)} FAILED (release needs --despite-checks)")
    ]
    return rows + [(f"  {r.get('check')}", r.get("detail", "")) for r in bad]
