"""The figures of c2d's benchmarks: statistics, one ``Row`` per figure, the printed table.

``finish(name, rows)`` prints a benchmark's table, saves its rows under
``/var/tmp/c2d-bench/results`` and rewrites ``bench/RESULTS.md`` from every saved result
(``summary.write_summary``).
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

RESULTS = Path("/var/tmp/c2d-bench/results")


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile by the nearest-rank method (no interpolation)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.0f} ms"


def secs(seconds: float) -> str:
    return f"{seconds:.2f} s"


@dataclass(frozen=True)
class Row:
    """One figure: c2d's value, the baseline's (same run), their ratio, the goal and verdict."""

    measure: str
    value: str
    baseline: str
    ratio: str
    goal: str
    met: bool | None
    note: str = ""


HEADER = ("measure", "c2d", "baseline (same run)", "ratio", "goal", "met")


def table(rows: Sequence[Row]) -> str:
    """The rows as an aligned text table."""
    cells = [HEADER] + [
        (r.measure, r.value, r.baseline, r.ratio, r.goal, verdict(r.met)) for r in rows
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADER))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def verdict(met: bool | None) -> str:
    return "-" if met is None else ("yes" if met else "NO")


def finish(name: str, rows: Sequence[Row], extra: dict[str, Any] | None = None) -> None:
    """Print the table, save the rows, and rewrite bench/RESULTS.md from every saved result."""
    print(table(rows))
    for row in rows:
        if row.note:
            print(f"  note ({row.measure}): {row.note}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    doc = {
        "bench": name,
        "time": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "argv": sys.argv[1:],
        "rows": [asdict(r) for r in rows],
        "extra": extra or {},
    }
    (RESULTS / f"{name}.json").write_text(json.dumps(doc, indent=2) + "\n")
    from bench.summary import write_summary  # beside this file; imported late to avoid a cycle

    write_summary()
