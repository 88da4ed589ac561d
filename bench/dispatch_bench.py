"""Dispatch latency: from the owner's approve to the job's container started, p50 and p95.

Run: .venv/bin/python -m bench.dispatch_bench [--runs N] [--quick]

- c2d: the clock starts just before the approve call and stops at the engine's ``start``
  event for the job's container (its ``timeNano``, from the same machine's clock). One
  no-op job at a time, an API server and one worker on a private Redis. The job's ``started``
  time (when the worker claimed it) splits the figure into queue+claim and preflight+start.
- baseline: ``docker run -d --rm`` of the same container (same limits and mounts), from the
  process start to the engine's ``start`` event: what the engine and its CLI need anyway.
Goal (issue 8): p50 <= 100 ms.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from bench import baseline, common, figures
from bench.figures import Row, median, ms, percentile

NOOP = ("python3", "-c", "pass")
MEMORY = 512 * 1024 * 1024
GOAL_S = 0.100


def c2d_runs(p: common.People, folder: Path, ds: str, runs: int) -> dict[str, list[float]]:
    """Seconds from approve to: claimed, container created, container started; per run."""
    approved: dict[str, float] = {}
    claimed: dict[str, float] = {}
    since = time.time()
    for _ in range(runs):
        job_id = common.submit(p.researcher, folder, ds)
        t0, _, job = common.approve_and_wait(p, job_id)
        approved[job_id] = t0
        claimed[job_id] = datetime.fromisoformat(job["started"]).timestamp()
    started = baseline.start_times(since, time.time())
    created = baseline.start_times(since, time.time(), event="create")
    missing = set(approved) - set(started) - set(created)
    if missing:
        raise RuntimeError(f"no create or start event for jobs {sorted(missing)}")
    ids = sorted(approved)
    return {
        "claimed": [claimed[i] - approved[i] for i in ids],
        "created": [created[i] - approved[i] for i in ids],
        "started": [started[i] - approved[i] for i in ids],
    }


def bare_runs(argv_of: Callable[[str], list[str]], runs: int) -> dict[str, list[float]]:
    """Seconds from ``docker run -d --rm``'s process start to: created, started; per run."""
    began: dict[str, float] = {}
    since = time.time()
    for _ in range(runs):
        tag = uuid.uuid4().hex
        began[tag] = time.time()
        subprocess.run(argv_of(tag), check=True, capture_output=True)
        time.sleep(0.5)  # let the no-op end, as the c2d runs do, so runs do not overlap
    label = baseline.BENCH_LABEL
    started = baseline.start_times(since, time.time(), label=label)
    created = baseline.start_times(since, time.time(), label=label, event="create")
    return {
        "created": [created[tag] - began[tag] for tag in began],
        "started": [started[tag] - began[tag] for tag in began],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=None, help="runs of each (default 20)")
    parser.add_argument("--quick", action="store_true", help="8 runs of each")
    args = parser.parse_args()
    runs = args.runs or (8 if args.quick else 20)
    root = common.scratch("dispatch")
    image = baseline.image_id()
    common.small_dataset(root / "data", 1024 * 1024)
    code, outputs = baseline.bare_dirs(root)

    def argv_of(tag: str) -> list[str]:
        return baseline.docker_run_args(
            image,
            NOOP,
            data=root / "data",
            code=code,
            outputs=outputs,
            memory=MEMORY,
            detach=True,
            label=tag,
        )

    try:
        with common.stack(root) as st:
            p = common.people(st)
            ds = common.register(st, p, root / "data")
            folder = common.job_folder(root / "job", NOOP, memory="512MiB")
            c2d_runs(p, folder, ds, 1)  # warm-up
            bare_runs(argv_of, 1)
            times = c2d_runs(p, folder, ds, runs)
            bare_times = bare_runs(argv_of, runs)
            p.close()
    finally:
        baseline.remove_bench_containers()
        shutil.rmtree(root, ignore_errors=True)
    to_start = times["started"]
    prepare = [a - b for a, b in zip(times["created"], times["claimed"], strict=True)]
    engine = [a - b for a, b in zip(to_start, times["created"], strict=True)]
    bare = bare_times["started"]
    bare_engine = [a - b for a, b in zip(bare, bare_times["created"], strict=True)]
    rows = [
        Row(
            measure=f"approve -> container started, p50 (n={runs})",
            value=ms(median(to_start)),
            baseline=ms(median(bare)) + " docker run -d",
            ratio=f"{median(to_start) / median(bare):.2f}x",
            goal=f"<= {ms(GOAL_S)}",
            met=median(to_start) <= GOAL_S,
            note=f"medians of its parts: approve -> claimed (API, Redis, Celery, claim) "
            f"{ms(median(times['claimed']))}; claimed -> container created (preflight, "
            f"prepare) {ms(median(prepare))}; created -> started (engine) "
            f"{ms(median(engine))}. The bare runs' own created -> started: "
            f"{ms(median(bare_engine))}",
        ),
        Row(
            measure=f"approve -> container started, p95 (n={runs})",
            value=ms(percentile(to_start, 95)),
            baseline=ms(percentile(bare, 95)) + " docker run -d",
            ratio=f"{percentile(to_start, 95) / percentile(bare, 95):.2f}x",
            goal="-",
            met=None,
            note=f"c2d {[round(x * 1e3) for x in to_start]} ms; bare "
            f"{[round(x * 1e3) for x in bare]} ms",
        ),
    ]
    figures.finish("dispatch", rows)


if __name__ == "__main__":
    main()
