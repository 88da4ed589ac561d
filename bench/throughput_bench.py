"""Throughput: 50 no-op jobs through c2d with 2 worker processes vs 50 bare runs, 2 at a time.

Run: .venv/bin/python -m bench.throughput_bench [--jobs N] [--rounds R] [--quick]

- c2d: N no-op jobs (``python3 -c pass``) are submitted and dry-run (untimed), then the owner
  approves them all as fast as the API answers; the clock runs from the first approve until
  the researcher's client sees the last one succeeded (the job list polled every 50 ms). Two
  ``c2d worker`` processes of concurrency 1 on a private Redis.
- baseline: N ``docker run --rm`` of the same container (``baseline.docker_run_args``), two
  at a time from a thread pool.
Each round runs the baseline, then c2d; the figure is jobs per second, median over rounds.
Goal (issue 8): c2d reaches >= 85% of the bare rate.
"""

from __future__ import annotations

import argparse
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import baseline, common, figures
from bench.figures import Row, median

NOOP = ("python3", "-c", "pass")
MEMORY = 512 * 1024 * 1024
GOAL = 0.85


def bare_round(argv: list[str], jobs: int) -> float:
    """Seconds for ``jobs`` bare runs, two at a time."""
    t0 = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda _: baseline.run_timed(argv), range(jobs)))
    return time.perf_counter() - t0


def c2d_round(p: common.People, folder: Path, ds: str, jobs: int) -> float:
    """Seconds from the first approve until every one of ``jobs`` jobs is seen succeeded."""
    ids = [common.submit(p.researcher, folder, ds, dryrun=False) for _ in range(jobs)]
    for job_id in ids:  # their dry runs (two at a time) end before the clock starts
        common.wait_for(f"{job_id}'s dry run", lambda j=job_id: p.researcher.dryrun(j), 300)
    waiting = set(ids)
    t0 = time.perf_counter()
    for job_id in ids:
        p.owner.approve(job_id)
    while waiting:
        for job in p.researcher.jobs():
            if job["id"] in waiting and job["state"] in common.DONE:
                common.must_succeed(job)
                waiting.discard(job["id"])
        if waiting:
            time.sleep(0.05)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50, help="jobs per round (default 50)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 2)")
    parser.add_argument("--quick", action="store_true", help="one round of 20 jobs")
    args = parser.parse_args()
    jobs = 20 if args.quick and args.jobs == 50 else args.jobs
    rounds = args.rounds or (1 if args.quick else 2)
    root = common.scratch("throughput")
    image = baseline.image_id()
    common.small_dataset(root / "data", 1024 * 1024)
    code, outputs = baseline.bare_dirs(root)
    argv = baseline.docker_run_args(
        image, NOOP, data=root / "data", code=code, outputs=outputs, memory=MEMORY
    )
    c2d_rates: list[float] = []
    bare_rates: list[float] = []
    try:
        with common.stack(root, workers=2, concurrency=1) as st:
            p = common.people(st)
            ds = common.register(st, p, root / "data")
            folder = common.job_folder(root / "job", NOOP, memory="512MiB")
            c2d_round(p, folder, ds, 2)  # warm-up: both workers import and connect
            baseline.run_timed(argv)
            for _ in range(rounds):
                bare_rates.append(jobs / bare_round(argv, jobs))
                c2d_rates.append(jobs / c2d_round(p, folder, ds, jobs))
            p.close()
    finally:
        baseline.remove_bench_containers()
        shutil.rmtree(root, ignore_errors=True)
    ratio = median(c2d_rates) / median(bare_rates)
    rows = [
        Row(
            measure=f"{jobs} no-op jobs, 2 workers vs 2 at a time (rounds={rounds})",
            value=f"{median(c2d_rates):.2f} jobs/s",
            baseline=f"{median(bare_rates):.2f} jobs/s docker run --rm",
            ratio=f"{ratio:.0%} of bare",
            goal=f">= {GOAL:.0%}",
            met=ratio >= GOAL,
            note=f"c2d {[round(r, 2) for r in c2d_rates]}/s, bare "
            f"{[round(r, 2) for r in bare_rates]}/s",
        )
    ]
    figures.finish("throughput", rows)


if __name__ == "__main__":
    main()
