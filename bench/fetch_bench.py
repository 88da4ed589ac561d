"""Fetch: a 1 GiB artifact downloaded with ``c2d fetch`` against ``cp`` of the same file.

Run: .venv/bin/python -m bench.fetch_bench [--runs N] [--quick]

A job writes 1 GiB of random bytes to /outputs; it is released on success. Then, alternately:
- c2d: the real ``c2d fetch JOB -o DIR --json`` console script, as the researcher (receipt
  verified, every byte hashed, the file fsynced and renamed into place);
- baseline: ``cp`` of the artifact store's blob of that same file into a fresh folder.
Both run under ``/usr/bin/time``: wall time gives the rate, and it reports each one's own
peak RSS. The folder is deleted between runs. Both read a file the page cache holds.
Goals (issue 8): >= 50% of cp's rate; the client's peak memory < 150 MB.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench import common, figures
from bench.figures import Row, median
from runner.artifacts import ArtifactStore

GiB = 1024**3
WRITE = (
    "import os\n"
    "with open('/outputs/big.bin', 'wb') as f:\n"
    "    for _ in range(1024):\n"
    "        f.write(os.urandom(1 << 20))\n"
)
RATE_GOAL = 0.5
RSS_GOAL_MB = 150
TIME = "/usr/bin/time"


def timed_child(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run ``argv`` under /usr/bin/time; return (wall seconds, its peak RSS in MB).

    /usr/bin/time is a small C program: the peak RSS the kernel reports for its child is the
    child's own (a child forked straight from this Python would start from this process's).
    """
    report = Path(tempfile.mkstemp(prefix="rss-")[1])
    try:
        t0 = time.perf_counter()
        done = subprocess.run(
            [TIME, "-f", "%M", "-o", str(report), *argv],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        elapsed = time.perf_counter() - t0
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} {argv[1]} failed: {done.stderr.decode()[-2000:]}")
        kib = int(report.read_text().split()[-1])
    finally:
        report.unlink(missing_ok=True)
    return elapsed, kib / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=None, help="runs of each (default 3)")
    parser.add_argument("--quick", action="store_true", help="2 runs of each")
    args = parser.parse_args()
    runs = args.runs or (2 if args.quick else 3)
    root = common.scratch("fetch")
    common.small_dataset(root / "data", 1024)
    fetch_s: list[float] = []
    cp_s: list[float] = []
    cp_sync_s: list[float] = []
    fetch_rss: list[float] = []
    cp_rss: list[float] = []
    try:
        with common.stack(root) as st:
            p = common.people(st)
            ds = common.register(st, p, root / "data")
            folder = common.job_folder(
                root / "job",
                ("python3", "-c", WRITE),
                memory="512MiB",
                timeout="10m",
                outputs="1100MiB",
                declared=("big.bin",),
            )
            (folder / "job.yaml").chmod(0o644)
            job_id = common.submit(p.researcher, folder, ds)
            _, _, job = common.approve_and_wait(p, job_id)
            digest = next(o["sha256"] for o in job["outcome"]["outputs"] if o["name"] == "big.bin")
            source = ArtifactStore(st.home / "artifacts").path(digest)
            env = dict(st.env)
            env.update(
                C2D_URL=st.url,
                C2D_TOKEN=p.researcher._http.headers["Authorization"].split()[-1],
                C2D_CONFIG=str(root / "no-config.json"),
            )
            for n in range(runs):
                target = root / f"fetched-{n}"
                took, rss = timed_child(
                    [str(common.C2D), "fetch", job_id, "-o", str(target), "--json"], env
                )
                if (target / "big.bin").stat().st_size != GiB:
                    raise RuntimeError("c2d fetch did not save the whole artifact")
                shutil.rmtree(target)
                fetch_s.append(took)
                fetch_rss.append(rss)
                copy = root / f"copied-{n}"
                copy.mkdir()
                took, rss = timed_child(["cp", str(source), str(copy / "big.bin")])
                cp_s.append(took)
                cp_rss.append(rss)
                t0 = time.perf_counter()
                subprocess.run(["sync", str(copy / "big.bin")], check=True)
                cp_sync_s.append(cp_s[-1] + time.perf_counter() - t0)
                shutil.rmtree(copy)
            p.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    rate = GiB / median(fetch_s) / 2**20
    cp_rate = GiB / median(cp_s) / 2**20
    sync_rate = GiB / median(cp_sync_s) / 2**20
    rows = [
        Row(
            measure=f"1 GiB artifact, c2d fetch vs cp (n={runs})",
            value=f"{rate:,.0f} MiB/s ({median(fetch_s):.2f} s)",
            baseline=f"{cp_rate:,.0f} MiB/s cp ({median(cp_s):.2f} s)",
            ratio=f"{rate / cp_rate:.0%} of cp",
            goal=f">= {RATE_GOAL:.0%}",
            met=rate / cp_rate >= RATE_GOAL,
            note=f"fetch {[round(x, 2) for x in fetch_s]} s, cp {[round(x, 2) for x in cp_s]} s;"
            f" cp followed by `sync FILE` (fetch fsyncs): {sync_rate:,.0f} MiB/s, so fetch "
            f"reaches {rate / sync_rate:.0%} of a durable copy",
        ),
        Row(
            measure="client peak RSS during that fetch",
            value=f"{max(fetch_rss):.0f} MB",
            baseline=f"{max(cp_rss):.0f} MB cp",
            ratio=f"{max(fetch_rss) / max(cp_rss):.0f}x",
            goal=f"< {RSS_GOAL_MB} MB",
            met=max(fetch_rss) < RSS_GOAL_MB,
            note="peak resident set of the `c2d fetch` process (/usr/bin/time %M), max over runs",
        ),
    ]
    figures.finish("fetch", rows)


if __name__ == "__main__":
    main()
