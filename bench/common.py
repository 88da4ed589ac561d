"""What c2d's benchmarks share: a private installation, its people, datasets and jobs.

Every benchmark starts its own c2d the way an operator does (``c2d init``, ``c2d server``,
``c2d worker`` as real processes) on a private ``redis-server`` on a free port, so nothing it
does touches, or is slowed by, another installation's queue. People act through the Python
client (``runner.client.Client``), the library the CLI is built on, polling every
``POLL_S`` so that what the benchmark sees is the server's latency (the CLI itself is pushed
each change; ``cli_bench`` times it whole).
The pre-approval dry run each submit triggers (on by default) is left on, and finished before
timing starts.

The bare-Docker baseline is in ``baseline``, the figures and the table in ``figures``.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs.bundle import pack
from jobs.spec import JobSpec
from runner.client import Client
from tests.kit import data
from tests.kit.installation import Installation, running
from tests.kit.procs import wait_for
from tests.kit.redis import RedisServer

CACHE = Path("/var/tmp/c2d-bench")
POLL_S = 0.01
DONE = frozenset({"succeeded", "released", "failed", "rejected", "cancelled"})
readable = data.readable


@contextmanager
def stack(
    root: Path, workers: int = 1, concurrency: int = 1, **settings: str
) -> Iterator[Installation]:
    """Init a c2d home under ``root`` on a private Redis; run the API and ``workers`` workers.

    A SIGTERM to the benchmark becomes SystemExit, so the processes started here stop too.
    Benchmark datasets live under the cache folder (cached sizes and each run's own data); the
    run's state folder inside it is never one.
    """
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    root.mkdir(parents=True, exist_ok=True)
    redis = RedisServer(root / "redis", persistent=False)
    redis.start()
    try:
        with running(
            root,
            redis.url,
            workers=workers,
            concurrency=concurrency,
            dataset_roots=CACHE,
            origin=f"c2d.bench/{uuid.uuid4().hex[:8]}",
            **settings,
        ) as made:
            yield made
    finally:
        redis.stop()


# -- people, datasets, jobs ---------------------------------------------------------------------


@dataclass
class People:
    """A data owner and a researcher of one stack, each with a client (and the owner's token,
    for `c2d dataset add` on the data host)."""

    owner: Client
    researcher: Client
    owner_token: str

    def close(self) -> None:
        self.owner.close()
        self.researcher.close()


def people(st: Installation) -> People:
    """Create an owner and a researcher through the API."""
    with st.client() as admin:
        owner = admin.add_user(f"olga-{uuid.uuid4().hex[:6]}", "owner")
        researcher = admin.add_user(f"rita-{uuid.uuid4().hex[:6]}", "researcher")
    return People(st.client(owner["token"]), st.client(researcher["token"]), owner["token"])


def small_dataset(folder: Path, size: int = 1024 * 1024) -> Path:
    """A dataset of one file of ``size`` real (random) bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "data.bin"
    if not target.exists() or target.stat().st_size != size:
        target.write_bytes(os.urandom(size))
    return readable(folder)


def register(st: Installation, p: People, folder: Path) -> str:
    """Register ``folder`` on the local data host as a dataset released on success (`c2d
    dataset add` as the owner, on the host); return its name."""
    name = f"ds-{uuid.uuid4().hex[:6]}"
    done = st.dataset_add(p.owner_token, name, folder, "--release-on-success")
    if done.returncode != 0:
        raise RuntimeError(f"c2d dataset add failed: {done.stderr}")
    return name


def job_folder(
    folder: Path,
    command: Sequence[str],
    *,
    cpus: float = 1.0,
    memory: str = "512MiB",
    timeout: str = "5m",
    outputs: str = "10MiB",
    declared: Sequence[str] = (),
) -> Path:
    """A job folder whose job.yaml runs ``command`` in python-ml with these resources."""
    made = data.job_folder(
        folder, command, name="bench", cpus=cpus, memory=memory, timeout=timeout,
        outputs=outputs, declared=declared,
    )  # fmt: skip
    (made / "README.md").write_text("benchmark job\n")
    return made


def submit(researcher: Client, folder: Path, dataset: str, *, dryrun: bool = True) -> str:
    """Submit a job folder as ``c2d submit`` does; return the job id (pending).

    Every submit also makes the data host run the job on mock data (the pre-approval dry run,
    on by default). With ``dryrun`` this waits until that is recorded, so the dry run's
    container never overlaps what a benchmark times after approval, as it would not when a
    person reviews the job before approving it.
    """
    spec = JobSpec.from_yaml(folder / "job.yaml").with_overrides(dataset=dataset)
    bundle = pack(folder)
    job_id = str(researcher.submit(spec.model_dump(mode="json"), bundle.data)["id"])
    if dryrun:
        wait_for(f"job {job_id}'s dry run", lambda: researcher.dryrun(job_id), 300, poll=POLL_S)
    return job_id


def wait_done(client: Client, job_id: str, timeout: float = 900.0) -> tuple[dict[str, Any], float]:
    """Poll the job every ``POLL_S`` until it ends; return it and when it was first seen ended."""
    deadline = time.monotonic() + timeout
    while True:
        job = client.job(job_id)
        if job["state"] in DONE:
            return job, time.time()
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {job['state']} after {timeout:.0f} s")
        time.sleep(POLL_S)


def must_succeed(job: dict[str, Any]) -> None:
    """Stop the benchmark if a job did not succeed: its time would measure something else."""
    if job["state"] not in ("succeeded", "released"):
        raise RuntimeError(f"job {job['id']} ended {job['state']}: {job.get('reason')}")


def approve_and_wait(p: People, job_id: str) -> tuple[float, float, dict[str, Any]]:
    """Approve ``job_id`` and wait for its end; return (approved-at, seen-ended-at, job)."""
    t0 = time.time()
    p.owner.approve(job_id)
    job, t1 = wait_done(p.researcher, job_id)
    must_succeed(job)
    return t0, t1, job


def scratch(name: str) -> Path:
    """A fresh working folder for one benchmark run under the cache folder."""
    root = CACHE / "runs" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    root.mkdir(parents=True, exist_ok=True)
    return root
