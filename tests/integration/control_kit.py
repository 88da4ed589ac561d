"""Helpers for the control plane's integration tests: real processes, Redis, Docker, HTTP.

A test module starts `c2d server` and/or `c2d worker` as real processes (each in its own
process group, output in a log file) on a state folder made with `init_home`, with a Redis
database number of its own, and stops exactly those processes at the end. The test process
opens the same installation (`open_context`) to look at rows, ledger entries and blobs.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from prockit import Proc, free_port, spawn, wait_for

from jobs.models import DatasetPolicy, Job, Role, User
from jobs.states import JobState
from runner.context import Context, open_context
from runner.control.install import init_home
from runner.host.engine import Engine
from runner.settings import Settings
from runner.transport import Dispatcher

C2D = Path(sys.executable).with_name("c2d")
READY_S = 60.0
T = TypeVar("T")

FINAL = frozenset(
    {JobState.SUCCEEDED, JobState.FAILED, JobState.RELEASED, JobState.REJECTED, JobState.CANCELLED}
)


def flush_redis(url: str) -> None:
    """Empty the Redis database at ``url`` (each test module owns one)."""
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()


@dataclass
class Install:
    """One installation under test: settings, the admin token, its processes, and helpers."""

    settings: Settings
    admin_token: str
    env: dict[str, str]
    logs: Path
    procs: list[Proc] = field(default_factory=list)
    _ctx: Context | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.port}"

    @property
    def ctx(self) -> Context:
        """The installation opened in the test process (to read rows, entries and blobs)."""
        if self._ctx is None:
            self._ctx = open_context(self.settings, engine=Engine(self.settings.work_dir))
        return self._ctx

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> Proc:
        """Start ``c2d ARGS`` as a real process in its own process group."""
        proc = spawn(
            name,
            [str(C2D), *args],
            {**self.env, **(env or {})},
            self.logs,
            log_file=f"{name}-{uuid.uuid4().hex[:6]}.log",
        )
        self.procs.append(proc)
        return proc

    def start_server(self) -> Proc:
        proc = self.start("server", "server")

        def healthy() -> bool:
            assert proc.alive(), proc.tail()
            with suppress(httpx.HTTPError, ValueError):
                return httpx.get(f"{self.url}/v1/health", timeout=2).json().get("ok") is True
            return False

        wait_for("the API to answer /v1/health", healthy, READY_S, proc.tail())
        return proc

    def start_worker(self, concurrency: int = 1, **env: str) -> Proc:
        proc = self.start("worker", "worker", "--concurrency", str(concurrency), env=env)
        wait_for(
            "the worker to be ready",
            lambda: proc.alive() and " ready." in proc.log.read_text(errors="replace"),
            READY_S,
            proc.tail(),
        )
        return proc

    def logs_text(self) -> str:
        return "\n".join(p.tail() for p in self.procs)

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        if self._ctx is not None:
            self._ctx.close()
            self._ctx = None

    # -- the job domain, in the test process ----------------------------------------------

    def user(self, role: str, prefix: str) -> tuple[User, str]:
        """A new user with a unique name; returns (user, token)."""
        return self.ctx.service.add_user(f"{prefix}-{uuid.uuid4().hex[:6]}", Role(role))

    def dataset(self, owner: User, folder: Path, **policy: Any) -> str:
        """Register ``folder`` for ``owner`` with a unique name; returns the name."""
        name = f"ds-{uuid.uuid4().hex[:6]}"
        self.ctx.service.register_dataset(
            owner, name, folder, DatasetPolicy(owner=owner.name, **policy)
        )
        return name

    def job(self, job_id: str) -> Job:
        return self.ctx.service.load_job(job_id)

    def wait_final(self, job_id: str, timeout: float = 120.0) -> Job:
        def final() -> Job | None:
            job = self.job(job_id)
            return job if job.state in FINAL else None

        return wait_for(f"job {job_id} to end", final, timeout, self.logs_text())

    def entry_types(self, job_id: str) -> list[str]:
        """The types of the ledger entries about ``job_id``, read straight from the file."""
        with sqlite3.connect(self.settings.db_path) as conn:
            rows = conn.execute(
                "SELECT canonical FROM ledger_entries WHERE subject = ? ORDER BY seq", (job_id,)
            ).fetchall()
        return [json.loads(bytes(r[0]))["type"] for r in rows]

    def dispatcher(self) -> Dispatcher:
        return Dispatcher.for_settings(self.settings)


@contextmanager
def installation(root: Path, redis_url: str, **settings: Any) -> Iterator[Install]:
    """A fresh installation under ``root``; its processes are stopped at the end.

    Its dataset root is the folder holding ``root`` (pytest's temporary folders), so the
    datasets tests make beside it may be registered; its state folder ``root/home`` never.
    """
    home = root / "home"
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    values: dict[str, Any] = {
        "home": home,
        "origin": f"c2d.test/{uuid.uuid4().hex[:8]}",
        "redis_url": redis_url,
        "port": free_port(),
        "bind": "127.0.0.1",
        "reconcile_s": 1.0,
        "dataset_roots": str(root.parent),
    }
    values.update(settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("C2D_")}
    env.update({f"C2D_{k.upper()}": str(v) for k, v in values.items()})
    env["PYTHONUNBUFFERED"] = "1"
    built = Settings(**values)
    token = init_home(built)
    install = Install(settings=built, admin_token=token, env=env, logs=logs)
    try:
        yield install
    finally:
        install.stop_all()


def make_dataset(folder: Path, rows: int = 50) -> Path:
    """A small CSV dataset that the sandbox's non-root user can read."""
    folder.mkdir(parents=True)
    lines = ["x,y"] + [f"{i},{i % 7}" for i in range(rows)]
    (folder / "rows.csv").write_text("\n".join(lines) + "\n")
    folder.chmod(0o755)
    (folder / "rows.csv").chmod(0o644)
    return folder


SLEEPER = """\
import json, pathlib, time
params = json.loads(pathlib.Path("/job/params.json").read_text())
rows = pathlib.Path("/data").glob("*/rows.csv")
count = sum(len(p.read_text().splitlines()) - 1 for p in rows)
print("started", flush=True)
time.sleep(float(params.get("sleep", 0)))
pathlib.Path("/outputs/result.txt").write_text(f"rows={count}\\n")
pathlib.Path("/outputs/metrics.json").write_text(json.dumps({"rows": count}))
print("done", flush=True)
"""


def make_job(folder: Path, dataset: str, sleep: float = 0.0, timeout: str = "2m") -> Path:
    """A job folder that counts the dataset's rows after sleeping ``sleep`` seconds."""
    folder.mkdir(parents=True)
    (folder / "run.py").write_text(SLEEPER)
    (folder / "job.yaml").write_text(
        f"name: sleeper\nenvironment: python-ml\ncommand: [python3, run.py]\n"
        f"dataset: {dataset}\nparams: {{sleep: {sleep}}}\n"
        f"resources: {{cpus: 0.5, memory: 256MiB, timeout: {timeout}, outputs: 1MiB}}\n"
        "outputs: [result.txt]\n"
    )
    return folder


def container_creations(docker_client: Any, job_id: str, since: float) -> list[dict[str, Any]]:
    """Docker's `create` events for the container of ``job_id`` since ``since``."""
    events = docker_client.events(
        since=int(since) - 1,
        until=int(time.time()) + 1,
        filters={"type": "container", "event": "create", "label": f"c2d.job={job_id}"},
        decode=True,
    )
    return list(events)


def job_containers(docker_client: Any, job_id: str) -> list[Any]:
    """Containers (any state) labelled as ``job_id``'s."""
    import docker.errors

    # The SDK inspects each listed container; one removed in between is simply gone.
    for _ in range(5):
        with suppress(docker.errors.NotFound):
            return list(
                docker_client.containers.list(all=True, filters={"label": f"c2d.job={job_id}"})
            )
    return []


def remove_job_containers(docker_client: Any, job_ids: list[str]) -> None:
    """Remove what a failed test may have left (containers labelled with these job ids)."""
    for job_id in job_ids:
        for container in job_containers(docker_client, job_id):
            with suppress(Exception):
                container.remove(force=True)
