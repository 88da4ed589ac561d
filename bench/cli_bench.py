"""The researcher's loop from the command line: how fast `c2d` answers, and `submit --wait`.

Run: .venv/bin/python -m bench.cli_bench [--runs N] [--quick]

Three figures, each timed as whole processes, interleaved with its baseline in the same run so
the machine's load hits both alike (one untimed warm-up of each first, so Python's bytecode
cache is written as on any installed machine):

- `c2d --help` against `python -c pass` (the interpreter alone): goal <= 150 ms;
- `c2d status JOB` against the same baseline, with an API server on this machine: goal
  <= 150 ms;
- `c2d submit DIR --wait` of a no-op job (`python3 -c pass`) that the owner trusts, so it is
  approved by policy and runs unattended, signed with the key the researcher's `c2d login`
  made, against a bare `docker run --rm` of the same image, command, limits and hardening
  (``baseline.docker_run_args``): goal <= 2x (moonshot 1.2x).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench import baseline, common, figures
from bench.figures import Row, median, ms
from tests.kit.installation import C2D, Installation

NOOP = ("python3", "-c", "pass")
START_GOAL_S = 0.150


def timed(argv: Sequence[str], env: dict[str, str], refuse: bytes | None = None) -> float:
    """Wall seconds of one process to its end; raise if it fails (or says ``refuse``)."""
    t0 = time.perf_counter()
    done = subprocess.run(list(argv), env=env, capture_output=True, check=False)
    took = time.perf_counter() - t0
    if done.returncode != 0 or (refuse is not None and refuse in done.stderr):
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr[-2000:]!r}")
    return took


def person_env(st: Installation, token: str, config: Path | None = None) -> dict[str, str]:
    """A person's environment, with Python's bytecode cache on (as it is by default)."""
    env = st.command_env(token, config)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def start_rows(st: Installation, token: str, job_id: str, runs: int) -> list[Row]:
    """`c2d --help` and `c2d status JOB` beside `python -c pass`."""
    env = person_env(st, token)
    bare = [sys.executable, "-c", "pass"]
    rows = []
    for what, argv in (
        ("c2d --help", [str(C2D), "--help"]),
        ("c2d status JOB", [str(C2D), "status", job_id]),
    ):
        c2d: list[float] = []
        python: list[float] = []
        for n in range(runs + 1):
            took_python = timed(bare, env)
            took_c2d = timed(argv, env)
            if n:  # the first of each is a warm-up
                python.append(took_python)
                c2d.append(took_c2d)
        value = median(c2d)
        rows.append(
            Row(
                measure=f"{what}, whole process (n={runs})",
                value=ms(value),
                baseline=ms(median(python)) + " python -c pass",
                ratio=f"{value / median(python):.1f}x",
                goal=f"<= {ms(START_GOAL_S)}",
                met=value <= START_GOAL_S,
                note=f"c2d {[round(x, 3) for x in c2d]}, python {[round(x, 3) for x in python]}",
            )
        )
    return rows


def trusted_noop(p: common.People, root: Path, ds: str) -> tuple[Path, str]:
    """A no-op job folder whose code and params the owner trusts for the researcher, and the
    id of the job the trust was set on."""
    folder = common.job_folder(root / "job-noop", NOOP, memory="512MiB")
    first = common.submit(p.researcher, folder, ds)
    common.approve_and_wait(p, first)
    p.owner.trust(first)
    return folder, first


def people(st: Installation) -> tuple[common.People, str]:
    """An owner and a researcher, and the researcher's token (the CLI runs as her)."""
    with st.client() as admin:
        owner = admin.add_user(f"olga-{os.getpid()}", "owner")
        researcher = admin.add_user(f"rita-{os.getpid()}", "researcher")
    clients = common.People(
        st.client(owner["token"]), st.client(researcher["token"]), str(owner["token"])
    )
    return clients, str(researcher["token"])


def submit_wait_row(
    st: Installation, token: str, folder: Path, ds: str, root: Path, runs: int
) -> Row:
    """`c2d submit DIR --wait` of the trusted no-op beside a bare `docker run --rm`.

    The researcher has logged in (`c2d login`), so every submission is signed with her key; the
    untimed warm-up run is her first signed action, when the client asks the server who she is
    and keeps the answer, as any later command of hers finds it."""
    config = root / "rita-client.json"
    login = st.c2d("login", st.url, "--with-token", config=config, stdin=token)
    if login.returncode != 0:
        raise RuntimeError(f"c2d login failed: {login.stderr[-2000:]}")
    env = person_env(st, token, config)
    image = baseline.image_id()
    code, outputs = baseline.bare_dirs(root)
    bare_argv = baseline.docker_run_args(
        image, NOOP, data=root / "data", code=code, outputs=outputs, memory=512 * 1024 * 1024
    )
    argv = [str(C2D), "submit", str(folder), "--dataset", ds, "--wait"]
    c2d: list[float] = []
    bare: list[float] = []
    for n in range(runs + 1):
        took_bare = baseline.run_timed(bare_argv)
        took_c2d = timed(argv, env, refuse=b"not signed")
        # Every submission is dry-run on mock data too; let that finish before the next pair.
        wait_idle(st)
        if n:
            bare.append(took_bare)
            c2d.append(took_c2d)
    ratio = median(c2d) / median(bare)
    return Row(
        measure=f"c2d submit --wait, trusted no-op job (n={runs})",
        value=ms(median(c2d)),
        baseline=ms(median(bare)) + " docker run --rm",
        ratio=f"{ratio:.2f}x",
        goal="<= 2x (moonshot 1.2x)",
        met=ratio <= 2.0,
        note=f"c2d {[round(x, 3) for x in c2d]}, bare {[round(x, 3) for x in bare]}",
    )


def wait_idle(st: Installation, timeout: float = 120.0) -> None:
    """Until no job container (a dry run) is left on the engine."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = subprocess.run(
            ["docker", "ps", "-q", "--filter", "label=c2d.job"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        if not listed:
            return
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=None, help="timed runs each (default 10)")
    parser.add_argument("--quick", action="store_true", help="5 runs each")
    args = parser.parse_args()
    runs = args.runs or (5 if args.quick else 10)
    root = common.scratch("cli")
    common.small_dataset(root / "data", 1024)
    rows: list[Row] = []
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    try:
        with common.stack(root) as st:
            p, token = people(st)
            ds = common.register(st, p, root / "data")
            folder, job_id = trusted_noop(p, root, ds)
            rows += start_rows(st, token, job_id, runs)
            rows.append(submit_wait_row(st, token, folder, ds, root, runs))
            p.close()
    finally:
        baseline.remove_bench_containers()
        shutil.rmtree(root, ignore_errors=True)
    figures.finish("cli", rows)


if __name__ == "__main__":
    main()
