"""Data size independence: job start latency on a 1 MB dataset against a 2 GB one.

Run: .venv/bin/python -m bench.data_size_bench [--runs N] [--quick] [--clean]

Both datasets hold real random bytes (a sparse file would hash its holes for free, which no
real dataset does). They are written once and kept in /var/tmp/c2d-bench/datasets;
``--clean`` deletes them and exits. Start latency is approve -> the engine's ``start`` event
of the job's container (as in dispatch_bench). Data is bind-mounted, never copied, and the
worker re-checks the dataset digest from its hash cache, so size should not matter: runs
alternate small/large, after one untimed warm-up job on each (registration hashes the data
once; that time is reported too). Goal (issue 8): the 2 GB median within 10% of the 1 MB one.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

from bench import baseline, common, figures
from bench.figures import Row, median, ms

NOOP = ("python3", "-c", "pass")
DATASETS = common.CACHE / "datasets"
MiB = 1024 * 1024
SIZES = {"1MB": 1 * MiB, "2GB": 2048 * MiB}
GOAL = 1.10


def ensure_dataset(name: str, size: int) -> None:
    """Write ``size`` random bytes (1 MiB at a time) unless the file is already complete."""
    folder = DATASETS / name
    target = folder / "data.bin"
    if target.exists() and target.stat().st_size == size:
        return
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / ".data.bin.part"
    with part.open("wb") as f:
        for _ in range(size // MiB):
            f.write(os.urandom(MiB))
        f.write(os.urandom(size % MiB))
    part.rename(target)
    common.readable(folder)
    common.readable(DATASETS)


def start_latency(p: common.People, folder: Path, ds: str) -> tuple[str, float]:
    job_id = common.submit(p.researcher, folder, ds)
    t0, _, _ = common.approve_and_wait(p, job_id)
    return job_id, t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=None, help="runs per dataset (default 8)")
    parser.add_argument("--quick", action="store_true", help="3 runs per dataset")
    parser.add_argument("--clean", action="store_true", help="delete the cached datasets")
    args = parser.parse_args()
    if args.clean:
        shutil.rmtree(DATASETS, ignore_errors=True)
        print(f"removed {DATASETS}")
        return
    runs = args.runs or (3 if args.quick else 8)
    for name, size in SIZES.items():
        ensure_dataset(name, size)
    root = common.scratch("data-size")
    approved: dict[str, dict[str, float]] = {name: {} for name in SIZES}
    registered: dict[str, float] = {}
    try:
        with common.stack(root) as st:
            p = common.people(st)
            names = {}
            for name in SIZES:
                t0 = time.perf_counter()
                names[name] = common.register(st, p, DATASETS / name)
                registered[name] = time.perf_counter() - t0
            folder = common.job_folder(root / "job", NOOP, memory="512MiB")
            for name in SIZES:  # warm-up
                start_latency(p, folder, names[name])
            since = time.time()
            for _ in range(runs):
                for name in SIZES:
                    job_id, t0 = start_latency(p, folder, names[name])
                    approved[name][job_id] = t0
            started = baseline.start_times(since, time.time())
            p.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    latency = {name: [started[j] - t0 for j, t0 in approved[name].items()] for name in SIZES}
    small, large = median(latency["1MB"]), median(latency["2GB"])
    rows = [
        Row(
            measure=f"start latency, 2 GB vs 1 MB dataset (n={runs})",
            value=ms(large) + " (2 GB)",
            baseline=ms(small) + " (1 MB)",
            ratio=f"{large / small:.2f}x",
            goal=f"<= {GOAL:.2f}x",
            met=large / small <= GOAL,
            note=f"2 GB {[round(x * 1e3) for x in latency['2GB']]} ms, 1 MB "
            f"{[round(x * 1e3) for x in latency['1MB']]} ms; registering (hashing once) took "
            f"{registered['2GB']:.1f} s for 2 GB, {registered['1MB']:.2f} s for 1 MB",
        )
    ]
    figures.finish("data_size", rows)


if __name__ == "__main__":
    main()
