"""Write bench/RESULTS.md from the results the benchmarks saved.

Run: .venv/bin/python -m bench.summary [--run-ledger]

Every ``*_bench.py`` of c2d's own saves its rows under ``/var/tmp/c2d-bench/results`` and calls
``write_summary`` when it ends, so after ``make bench`` the file holds every figure. The ledger
benchmark (``ledger_bench.py``) only prints its table; ``--run-ledger`` runs it, reads that
table and saves its rows too. The hand-written part of RESULTS.md (from its ``## Analysis``
heading to the end: why a goal was missed, what was profiled) is kept as it is.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = Path("/var/tmp/c2d-bench/results")
OUT = HERE / "RESULTS.md"
ANALYSIS = "## Analysis"
ORDER = ("job_overhead", "throughput", "dispatch", "data_size", "fetch", "ledger")


def machine() -> dict[str, str]:
    """The facts a reader needs to compare figures: cores, memory, kernel, Docker."""
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    docker = subprocess.run(
        ["docker", "version", "--format", "{{.Server.Version}}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {
        "nproc": str(len(__import__("os").sched_getaffinity(0))),
        "cpu": cpu,
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "docker": docker or "unknown",
        "python": platform.python_version(),
    }


def run_ledger(extra: list[str]) -> None:
    """Run ledger_bench.py, parse its printed table and save it as the ledger's rows."""
    done = subprocess.run(
        [sys.executable, str(HERE / "ledger_bench.py"), *extra],
        capture_output=True,
        text=True,
        check=True,
    )
    print(done.stdout)
    lines = [x for x in done.stdout.splitlines() if x.strip()]
    rows = []
    for line in lines[2:]:  # header, dashes
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) != 5:
            continue
        measure, value, baseline, ratio, goal = cells
        rows.append(
            {
                "measure": measure,
                "value": value,
                "baseline": baseline,
                "ratio": ratio if ratio == "-" else f"{ratio}x its speed",
                "goal": goal,
                "met": _ledger_met(value, goal),
                "note": "",
            }
        )
    doc = {
        "bench": "ledger",
        "time": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "argv": extra,
        "rows": rows,
        "extra": {},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ledger.json").write_text(json.dumps(doc, indent=2) + "\n")


def _number(text: str) -> float:
    return float(re.sub(r"[^0-9.]", "", text.split()[0]) or "nan")


def _ledger_met(value: str, goal: str) -> bool | None:
    """The ledger issue's goals are absolute: '>= 3,000/s', '<= 10 s', '<= 1 ms'."""
    if goal.startswith(">="):
        return _number(value) >= _number(goal[2:].strip())
    if goal.startswith("<="):
        return _number(value) <= _number(goal[2:].strip())
    return None


def _verdict(met: Any) -> str:
    return "-" if met is None else ("yes" if met else "**no**")


def write_summary() -> Path:
    """Rewrite RESULTS.md from every saved result; return its path."""
    saved: dict[str, dict[str, Any]] = {}
    for path in RESULTS.glob("*.json") if RESULTS.is_dir() else []:
        doc = json.loads(path.read_text())
        saved[doc["bench"]] = doc
    facts = machine()
    out = [
        "# c2d benchmark results",
        "",
        f"Written {time.strftime('%Y-%m-%d %H:%M %Z')} by `bench/summary.py` from the figures the "
        "benchmarks saved (each bench's own run time is in its section). Every figure is set "
        "beside a baseline measured in the same run; medians unless said otherwise.",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in facts.items()) + ".",
        "",
        "Reproduce: `make bench` (each bench also takes `--quick`), then "
        "`.venv/bin/python bench/summary.py --run-ledger` to add the ledger's rows. Ratios: "
        "time ratios are c2d / baseline (lower is better), rates are c2d as a share of the "
        "baseline, the ledger's are its speed as a share of the raw baseline's.",
        "",
        "| bench | measure | c2d | baseline (same run) | ratio | goal | met |",
        "|---|---|---|---|---|---|---|",
    ]
    names = [n for n in ORDER if n in saved] + sorted(set(saved) - set(ORDER))
    for name in names:
        for row in saved[name]["rows"]:
            out.append(
                f"| {name} | {row['measure']} | {row['value']} | {row['baseline']} | "
                f"{row['ratio']} | {row['goal']} | {_verdict(row['met'])} |"
            )
    out += ["", "## Runs", ""]
    for name in names:
        doc = saved[name]
        args = " ".join(doc.get("argv") or [])
        out.append(f"- `{name}`: measured {doc['time']}" + (f" with `{args}`" if args else ""))
        for row in doc["rows"]:
            if row.get("note"):
                out.append(f"  - {row['measure']}: {row['note']}")
    kept = OUT.read_text() if OUT.exists() else ""
    if ANALYSIS in kept:
        out += ["", ANALYSIS + kept.split(ANALYSIS, 1)[1].rstrip()]
    OUT.write_text("\n".join(out) + "\n")
    return OUT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-ledger", action="store_true", help="run ledger_bench.py first")
    parser.add_argument("--ledger-entries", type=int, default=None, help="its --entries")
    args = parser.parse_args()
    if args.run_ledger:
        run_ledger(["--entries", str(args.ledger_entries)] if args.ledger_entries else [])
    print(write_summary())


if __name__ == "__main__":
    main()
