"""Job overhead: one job through c2d against a bare ``docker run --rm`` of the same container.

Run: .venv/bin/python -m bench.job_overhead_bench [--runs N] [--quick]

For a no-op job (``python3 -c pass``) and a job of about 5 s (``time.sleep(5)``):
- c2d: from the owner's approve call until the researcher's client sees the job succeeded
  (polled every 10 ms), with an API server and one worker on a private Redis;
- baseline: the whole ``docker run --rm`` process of the same image and command with the same
  limits, hardening and mounts (``baseline.docker_run_args``).
Runs alternate (baseline, c2d, baseline, ...) so drift in the machine's load hits both; one
untimed warm-up of each first. Goals (issue 8): <= 1.5x for the no-op, <= 1.05x for 5 s.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from bench import baseline, common, figures
from bench.figures import Row, median, ms, secs

NOOP = ("python3", "-c", "pass")
SLEEP = ("python3", "-c", "import time; time.sleep(5)")
MEMORY = 512 * 1024 * 1024


def measure(
    p: common.People,
    ds: str,
    root: Path,
    image: str,
    command: tuple[str, ...],
    runs: int,
    tag: str,
) -> tuple[list[float], list[float]]:
    """Alternate bare and c2d runs of ``command``; return (c2d seconds, bare seconds)."""
    folder = common.job_folder(root / f"job-{tag}", command, memory="512MiB")
    code, outputs = baseline.bare_dirs(root)
    argv = baseline.docker_run_args(
        image, command, data=root / "data", code=code, outputs=outputs, memory=MEMORY
    )
    c2d: list[float] = []
    bare: list[float] = []
    for n in range(runs + 1):
        job_id = common.submit(p.researcher, folder, ds)
        took_bare = baseline.run_timed(argv)
        t0, t1, _ = common.approve_and_wait(p, job_id)
        if n:  # the first of each is a warm-up
            bare.append(took_bare)
            c2d.append(t1 - t0)
    return c2d, bare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=None, help="timed runs per job (default 10)")
    parser.add_argument("--quick", action="store_true", help="3 no-op and 2 sleep runs")
    args = parser.parse_args()
    noop_runs = args.runs or (3 if args.quick else 10)
    sleep_runs = args.runs or (2 if args.quick else 4)
    root = common.scratch("job-overhead")
    image = baseline.image_id()
    common.small_dataset(root / "data", 1024 * 1024)
    rows = []
    try:
        with common.stack(root) as st:
            p = common.people(st)
            ds = common.register(st, p, root / "data")
            for tag, command, runs, goal in (
                ("noop", NOOP, noop_runs, 1.5),
                ("5s", SLEEP, sleep_runs, 1.05),
            ):
                c2d, bare = measure(p, ds, root, image, command, runs, tag)
                ratio = median(c2d) / median(bare)
                show = ms if tag == "noop" else secs
                rows.append(
                    Row(
                        measure=f"{tag} job, approve -> succeeded (n={runs})",
                        value=show(median(c2d)),
                        baseline=show(median(bare)) + " docker run --rm",
                        ratio=f"{ratio:.2f}x",
                        goal=f"<= {goal}x",
                        met=ratio <= goal,
                        note=f"c2d {[round(x, 3) for x in c2d]}, bare "
                        f"{[round(x, 3) for x in bare]}",
                    )
                )
            p.close()
    finally:
        baseline.remove_bench_containers()
        shutil.rmtree(root, ignore_errors=True)
    figures.finish("job_overhead", rows)


if __name__ == "__main__":
    main()
