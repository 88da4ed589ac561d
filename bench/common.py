"""What c2d's benchmarks share: a private installation, its people, datasets and jobs.

Every benchmark starts its own c2d the way an operator does (``c2d init``, ``c2d server``,
``c2d worker`` as real processes) on a private ``redis-server`` on a free port, so nothing it
does touches, or is slowed by, another installation's queue. People act through the Python
client (``runner.client.Client``), the library the CLI is built on, polling every
``POLL_S`` so that what the benchmark sees is the server's latency, not the CLI's 1 s poll.
The pre-approval dry run each submit triggers (on by default) is left on, and finished before
timing starts.

The bare-Docker baseline is in ``baseline``, the figures and the table in ``figures``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from jobs.bundle import pack
from jobs.spec import JobSpec
from runner.client import Client

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # prockit: the processes the test suites start too

from prockit import Proc, free_port, spawn, wait_for  # noqa: E402

C2D = Path(sys.executable).with_name("c2d")
CACHE = Path("/var/tmp/c2d-bench")
POLL_S = 0.01
READY_S = 60.0
DONE = frozenset({"succeeded", "released", "failed", "rejected", "cancelled"})


# -- processes --------------------------------------------------------------------------------


@contextmanager
def own_redis(root: Path) -> Iterator[str]:
    """A private, non-persistent redis-server on a free port; yields its URL."""
    import redis

    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(root)]
    proc = spawn("redis", [*argv, "--save", "", "--appendonly", "no"], dict(os.environ), root)
    url = f"redis://127.0.0.1:{port}/0"

    def answers() -> bool:
        with suppress(redis.RedisError):
            return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
        return False

    try:
        wait_for("the benchmark's redis-server", answers, 20)
        yield url
    finally:
        proc.stop(5)


@dataclass
class Stack:
    """One c2d installation under ``root``: its settings (as C2D_ env), API URL and processes."""

    root: Path
    env: dict[str, str]
    url: str
    admin_token: str = ""
    procs: list[Proc] = field(default_factory=list)

    @property
    def home(self) -> Path:
        return Path(self.env["C2D_HOME"])

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def start_server(self) -> Proc:
        proc = spawn("server", [str(C2D), "server"], self.env, self.logs)
        self.procs.append(proc)

        def healthy() -> bool:
            if not proc.alive():
                raise RuntimeError(f"c2d server exited:\n{proc.text()[-3000:]}")
            with suppress(httpx.HTTPError, ValueError):
                return httpx.get(f"{self.url}/v1/health", timeout=2).json().get("ok") is True
            return False

        wait_for("the API to answer /v1/health", healthy, READY_S)
        return proc

    def start_worker(self, concurrency: int = 1) -> Proc:
        name = f"worker-{len(self.procs)}"
        argv = [str(C2D), "worker", "--concurrency", str(concurrency)]
        proc = spawn(name, argv, self.env, self.logs)
        self.procs.append(proc)

        def ready() -> bool:
            if not proc.alive():
                raise RuntimeError(f"c2d worker exited:\n{proc.text()[-3000:]}")
            return " ready." in proc.text()

        wait_for("the worker to be ready", ready, READY_S)
        return proc

    def client(self, token: str | None = None, timeout: float = 120.0) -> Client:
        return Client(self.url, token if token is not None else self.admin_token, timeout)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()


@contextmanager
def stack(root: Path, workers: int = 1, concurrency: int = 1, **settings: str) -> Iterator[Stack]:
    """Init a c2d home under ``root`` on a private Redis; run the API and ``workers`` workers.

    A SIGTERM to the benchmark becomes SystemExit, so the processes started here stop too.
    """
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    root.mkdir(parents=True, exist_ok=True)
    (root / "logs").mkdir(exist_ok=True)
    with own_redis(root / "redis") as redis_url:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("C2D_")}
        env.update(
            {
                "C2D_HOME": str(root / "home"),
                "C2D_PORT": str(port),
                "C2D_BIND": "127.0.0.1",
                "C2D_REDIS_URL": redis_url,
                "C2D_ORIGIN": f"c2d.bench/{uuid.uuid4().hex[:8]}",
                # Benchmark datasets live under the cache folder (cached sizes and each run's
                # own data); the run's state folder inside it is never one.
                "C2D_DATASET_ROOTS": str(CACHE),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update({f"C2D_{k.upper()}": v for k, v in settings.items()})
        made = Stack(root=root, env=env, url=f"http://127.0.0.1:{port}")
        done = subprocess.run(
            [str(C2D), "init", "--json"], env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"c2d init failed: {done.stderr}")
        made.admin_token = json.loads(done.stdout)["token"]
        try:
            made.start_server()
            for _ in range(workers):
                made.start_worker(concurrency)
            yield made
        finally:
            made.stop()


# -- people, datasets, jobs ---------------------------------------------------------------------


@dataclass
class People:
    """A data owner and a researcher of one stack, each with a client."""

    owner: Client
    researcher: Client

    def close(self) -> None:
        self.owner.close()
        self.researcher.close()


def people(st: Stack) -> People:
    """Create an owner and a researcher through the API."""
    with st.client() as admin:
        owner = admin.add_user(f"olga-{uuid.uuid4().hex[:6]}", "owner")
        researcher = admin.add_user(f"rita-{uuid.uuid4().hex[:6]}", "researcher")
    return People(st.client(owner["token"]), st.client(researcher["token"]))


def readable(folder: Path) -> Path:
    """Make ``folder`` readable by the job's unprivileged uid (as data owners are told to)."""
    folder.chmod(0o755)
    for path in folder.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return folder


def small_dataset(folder: Path, size: int = 1024 * 1024) -> Path:
    """A dataset of one file of ``size`` real (random) bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "data.bin"
    if not target.exists() or target.stat().st_size != size:
        target.write_bytes(os.urandom(size))
    return readable(folder)


def register(owner: Client, folder: Path) -> str:
    """Register ``folder`` as a dataset released on success; return its name."""
    name = f"ds-{uuid.uuid4().hex[:6]}"
    owner.add_dataset(name, str(folder), review_outputs=False)
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
    folder.mkdir(parents=True, exist_ok=True)
    spec = {
        "name": "bench",
        "environment": "python-ml",
        "command": list(command),
        "resources": {"cpus": cpus, "memory": memory, "timeout": timeout, "outputs": outputs},
        "outputs": list(declared),
    }
    (folder / "job.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    (folder / "README.md").write_text("benchmark job\n")
    return folder


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
