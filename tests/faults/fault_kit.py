"""The fault-injection suite's kit: a real c2d on a private Redis, and the jobs it runs.

``FaultStack`` is one installation started the way an operator starts one: ``c2d init`` then
``c2d server`` and ``c2d worker`` as real processes (each in its own process group), on a
``redis-server`` of its own (``RedisServer``, on a free port in a temporary folder, with or
without persistence), so a test may kill, stop and restart any of them without touching the
shared services. Leases are short (3 s) so that recovery happens within a test's time.

The invariants every case ends with are in ``fault_invariants``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from fault_procs import RedisServer
from prockit import Proc, free_port, spawn, wait_for

from jobs.bundle import pack
from jobs.spec import JobSpec
from runner.client import Client

C2D = Path(sys.executable).with_name("c2d")
REPO = Path(__file__).resolve().parents[2]
READY_S = 60.0
COMMAND_S = 120.0

ENDED = frozenset({"succeeded", "released", "failed", "rejected", "cancelled"})
FAST_LEASES = {"lease_s": "3", "redispatch_s": "2", "reconcile_s": "1"}
# Every submit also runs the job on mock data (the pre-approval dry run, on by default, as
# shipped); capping it keeps a long fault job's dry run from outliving the case.
SHORT_DRYRUNS = {"dryrun_timeout": "5s"}
DRYRUN_SUFFIX = "-dryrun"


@dataclass
class People:
    """A data owner and a researcher with their tokens, and the canary's dataset."""

    owner: str
    owner_token: str
    researcher: str
    researcher_token: str
    dataset: str


@dataclass
class FaultStack:
    """One c2d installation with its own Redis; see the module docstring."""

    root: Path
    redis: RedisServer
    env: dict[str, str]
    url: str
    admin_token: str = ""
    procs: list[Proc] = field(default_factory=list)
    people: People | None = None

    @property
    def home(self) -> Path:
        return Path(self.env["C2D_HOME"])

    @property
    def db(self) -> Path:
        return self.home / "c2d.db"

    @property
    def log_dir(self) -> Path:
        return self.root / "logs"

    # -- processes -------------------------------------------------------------------------

    def start_server(self) -> Proc:
        proc = spawn("server", [str(C2D), "server"], self.env, self.log_dir)
        self.procs.append(proc)

        def healthy() -> bool:
            assert proc.alive(), proc.tail()
            with suppress(httpx.HTTPError, ValueError):
                return httpx.get(f"{self.url}/v1/health", timeout=2).json().get("ok") is True
            return False

        wait_for("the API to answer /v1/health", healthy, READY_S, proc.tail())
        return proc

    def start_worker(self, concurrency: int = 1) -> Proc:
        name = f"worker-{uuid.uuid4().hex[:6]}"
        argv = [str(C2D), "worker", "--concurrency", str(concurrency)]
        proc = spawn(name, argv, self.env, self.log_dir)
        self.procs.append(proc)

        def ready() -> bool:
            assert proc.alive(), proc.tail()
            return " ready." in proc.text()

        wait_for("the worker to be ready", ready, READY_S, proc.tail())
        return proc

    def live(self, kind: str) -> list[Proc]:
        """The live processes whose name starts with ``kind`` (server, worker)."""
        return [p for p in self.procs if p.name.startswith(kind) and p.alive()]

    def ensure(self, kind: str, concurrency: int = 1) -> Proc:
        """A live server or worker, started if there is none."""
        running = self.live(kind)
        if running:
            return running[0]
        return self.start_server() if kind == "server" else self.start_worker(concurrency)

    def logs(self) -> str:
        return "\n".join(p.tail() for p in self.procs)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()

    def remove_leftovers(self, docker_client: Any) -> None:
        """After a failed case: remove this installation's containers and outputs mounts."""
        from runner.host.sandbox.workdir import job_dirs, remove_job_dir

        if self.db.exists():
            for container in job_containers(docker_client, self.job_ids()):
                with suppress(Exception):
                    container.remove(force=True)
        for jd in job_dirs(self.home / "work"):
            with suppress(Exception):
                remove_job_dir(jd)

    # -- people's side ---------------------------------------------------------------------

    def client(self, token: str | None = None) -> Client:
        return Client(self.url, token or self.admin_token, timeout=60)

    def cli(
        self, *args: str, token: str | None = None, timeout: float = COMMAND_S
    ) -> subprocess.CompletedProcess[str]:
        """Run the real ``c2d ARGS`` as the holder of ``token`` (default admin)."""
        env = dict(self.env)
        env.update(
            C2D_URL=self.url,
            C2D_TOKEN=token or self.admin_token,
            C2D_CONFIG=str(self.root / "no-client-config.json"),
        )
        return subprocess.run(
            [str(C2D), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )

    def cli_json(self, *args: str, expect: int = 0, token: str | None = None) -> Any:
        """``c2d ARGS --json``; check the exit code; return the one JSON document."""
        done = self.cli(*args, "--json", token=token)
        assert done.returncode == expect, (
            f"c2d {' '.join(args)} exited {done.returncode}, expected {expect}\n"
            f"stdout: {done.stdout}\nstderr: {done.stderr}\n{self.logs()}"
        )
        return json.loads(done.stdout)

    def setup_people(self, data: Path) -> People:
        """An owner, a researcher and a released-on-success dataset (made once per stack)."""
        if self.people is None:
            with self.client() as admin:
                owner = admin.add_user(f"olga-{uuid.uuid4().hex[:6]}", "owner")
                researcher = admin.add_user(f"rita-{uuid.uuid4().hex[:6]}", "researcher")
            dataset = f"ds-{uuid.uuid4().hex[:6]}"
            with self.client(owner["token"]) as client:
                client.add_dataset(dataset, str(make_dataset(data)))
            self.people = People(
                owner["name"], owner["token"], researcher["name"], researcher["token"], dataset
            )
        return self.people

    def submit(self, folder: Path, dataset: str | None = None) -> str:
        """Submit ``folder`` as the researcher (what ``c2d submit`` sends); the job id."""
        assert self.people is not None
        spec = JobSpec.from_yaml(folder / "job.yaml").with_overrides(
            dataset=dataset or self.people.dataset
        )
        with self.client(self.people.researcher_token) as client:
            return str(client.submit(spec.model_dump(mode="json"), pack(folder).data)["id"])

    def approve(self, job_id: str) -> dict[str, Any]:
        assert self.people is not None
        with self.client(self.people.owner_token) as client:
            return client.approve(job_id)

    # -- the installation's records, read in this process ------------------------------------

    def _query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30) as conn:
            return conn.execute(sql, params).fetchall()

    def state(self, job_id: str) -> str:
        rows = self._query("SELECT state FROM jobs WHERE id = ?", job_id)
        assert rows, f"no job {job_id} in the store"
        return str(rows[0][0])

    def job_ids(self) -> list[str]:
        return [r[0] for r in self._query("SELECT id FROM jobs ORDER BY created")]

    def entries(self, job_id: str) -> list[dict[str, Any]]:
        """The ledger entries about ``job_id``, in order, decoded."""
        rows = self._query(
            "SELECT canonical FROM ledger_entries WHERE subject = ? ORDER BY seq", job_id
        )
        return [json.loads(bytes(r[0])) for r in rows]

    def ledger_size(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM ledger_entries")[0][0])

    def job(self, job_id: str) -> dict[str, Any]:
        with self.client() as admin:
            return admin.job(job_id)

    def wait_dryrun(self, job_id: str, timeout: float = 60.0) -> None:
        """Wait until the job's pre-approval dry run is recorded (it runs on every submit)."""
        wait_for(
            f"job {job_id}'s dry run",
            lambda: any(e["type"] == "job.dryrun" for e in self.entries(job_id)),
            timeout,
            self.logs(),
        )

    def wait_ended(self, job_id: str, timeout: float = 120.0) -> dict[str, Any]:
        """Wait until the job is in an end state; return its API view."""
        wait_for(f"job {job_id} to end", lambda: self.state(job_id) in ENDED, timeout, self.logs())
        return self.job(job_id)


@contextmanager
def fault_stack(
    root: Path,
    docker_client: Any,
    *,
    persistent_redis: bool = False,
    extra_env: dict[str, str] | None = None,
    **settings: str,
) -> Iterator[FaultStack]:
    """``c2d init`` under ``root`` with its own Redis; start the API; stop all at the end.

    Workers are started by the tests (``ensure("worker")``), since many kill them. At the end
    whatever a failed case left (containers, outputs mounts) is removed with the processes.
    """
    (root / "logs").mkdir(parents=True, exist_ok=True)
    redis = RedisServer(root / "redis", persistent=persistent_redis)
    redis.start()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("C2D_")}
    values = {
        "home": str(root / "home"),
        "port": str(port),
        "bind": "127.0.0.1",
        "redis_url": redis.url,
        "origin": f"c2d.faults/{uuid.uuid4().hex[:8]}",
        # Datasets are made beside ``root`` (or in it); the state folder root/home never is one.
        "dataset_roots": str(root.parent),
        **FAST_LEASES,
        **SHORT_DRYRUNS,
        **settings,
    }
    env.update({f"C2D_{k.upper()}": v for k, v in values.items()})
    env.update(extra_env or {})  # e.g. DOCKER_HOST of a private engine
    env["PYTHONUNBUFFERED"] = "1"
    stack = FaultStack(root=root, redis=redis, env=env, url=f"http://127.0.0.1:{port}")
    try:
        done = subprocess.run(
            [str(C2D), "init", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=COMMAND_S,
            check=False,
        )
        assert done.returncode == 0, f"c2d init failed:\n{done.stdout}\n{done.stderr}"
        stack.admin_token = json.loads(done.stdout)["token"]
        stack.start_server()
        yield stack
    finally:
        stack.stop()
        redis.stop()
        stack.remove_leftovers(docker_client)


# -- jobs -------------------------------------------------------------------------------------


def make_dataset(folder: Path, rows: int = 40) -> Path:
    """A small CSV the sandbox's non-root user can read."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rows.csv").write_text("x,y\n" + "".join(f"{i},{i % 7}\n" for i in range(rows)))
    folder.chmod(0o755)
    (folder / "rows.csv").chmod(0o644)
    return folder


def job_folder(
    folder: Path,
    script: str,
    *,
    memory: str = "256MiB",
    timeout: str = "2m",
    outputs: str = "1MiB",
    declared: tuple[str, ...] = (),
) -> Path:
    """A job folder whose job.yaml runs ``python3 run.py`` (``script``) in python-ml."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "run.py").write_text(script)
    spec = {
        "name": "fault",
        "environment": "python-ml",
        "command": ["python3", "run.py"],
        "resources": {"cpus": 0.5, "memory": memory, "timeout": timeout, "outputs": outputs},
        "outputs": list(declared),
    }
    (folder / "job.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return folder


def sleeper(seconds: float) -> str:
    """A job that prints, sleeps ``seconds``, then writes a metric."""
    return (
        "import json, pathlib, time\n"
        "print('started', flush=True)\n"
        f"time.sleep({seconds})\n"
        "pathlib.Path('/outputs/metrics.json').write_text(json.dumps({'slept': "
        f"{seconds}}}))\n"
        "print('done', flush=True)\n"
    )


CANARY = sleeper(0)


def job_containers(docker_client: Any, job_ids: list[str] | None = None) -> list[Any]:
    """Containers (any state) labelled ``c2d.job`` for one of ``job_ids`` (all if None).

    A job's dry run has a container of its own, labelled ``<id>-dryrun``; it counts too.
    """
    import docker.errors

    wanted = None if job_ids is None else {*job_ids, *(j + DRYRUN_SUFFIX for j in job_ids)}
    for _ in range(5):  # the SDK inspects each listed container; one may vanish meanwhile
        with suppress(docker.errors.NotFound):
            found = docker_client.containers.list(all=True, filters={"label": "c2d.job"})
            return [c for c in found if wanted is None or c.labels.get("c2d.job") in wanted]
    return []


def running_container(docker_client: Any, job_id: str) -> Any:
    """The job's own container (not its dry run's) if it is running now, else None."""
    found = [c for c in job_containers(docker_client, [job_id]) if c.labels["c2d.job"] == job_id]
    return found[0] if found and found[0].status == "running" else None
