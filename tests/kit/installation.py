"""One running c2d installation for every suite that needs real processes, and the benchmarks.

``Installation`` is a state folder and the operator's environment (settings only through
``C2D_`` variables), started the way an operator starts one: ``c2d init`` (or ``init_home`` in
this process, which is faster; either enrolls the data host ``local`` under ``home/hosts``),
``c2d server``, ``c2d host start`` (``start_worker``) or ``c2d up`` as real processes, each in
its own process group with its output in a log file, so a test may kill exactly one. People
act through the real ``c2d`` console script (``c2d``, ``json``), or through the Python client
(``client``); the test reads rows and ledger entries straight from the database file
(``entries``, ``state``), or opens the control plane (``ctx``) or the local data host
(``host_ctx``, calling the service in-process) in its own process.

The integration tests (``tests/integration``), the end-to-end tests (``tests/e2e``), the
fault cases (``tests/faults``) and the benchmarks (``bench``) all use this one class; each
builds it with ``new_installation`` and the settings it needs.
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

from jobs.models import DatasetPolicy, Job, Role, User
from runner.client import Client
from runner.context import Context, open_context
from runner.host.context import HostContext
from runner.host.engine import Engine
from runner.installation import with_installation
from runner.settings import Settings
from runner.transport import Dispatcher
from tests.kit.procs import Proc, free_port, spawn, wait_for

REPO = Path(__file__).resolve().parents[2]
C2D = Path(sys.executable).with_name("c2d")
READY_S = 60.0
COMMAND_S = 180.0
ENDED = frozenset({"succeeded", "released", "failed", "rejected", "cancelled"})


@dataclass
class Installation:
    """One installation under ``root``: ``root/home`` is its state folder, ``root/logs`` the
    logs of the processes it started."""

    root: Path
    env: dict[str, str]
    admin_token: str = ""
    procs: list[Proc] = field(default_factory=list)
    _ctx: Context | None = None
    _host_ctx: HostContext | None = None

    # -- where it is ------------------------------------------------------------------------

    @property
    def home(self) -> Path:
        return Path(self.env["C2D_HOME"])

    @property
    def log_dir(self) -> Path:
        return self.root / "logs"

    @property
    def db(self) -> Path:
        return self.home / "c2d.db"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env['C2D_PORT']}"

    @property
    def settings(self) -> Settings:
        """The settings the operator's processes read from ``env``, with the installation id
        its state folder records once initialised (the prefix of its Redis keys)."""
        values = {k[4:].lower(): v for k, v in self.env.items() if k.startswith("C2D_")}
        return with_installation(Settings(**values))

    @property
    def ctx(self) -> Context:
        """The control plane opened in the test's own process (rows, entries, blobs)."""
        if self._ctx is None:
            self._ctx = open_context(self.settings)
        return self._ctx

    @property
    def host_home(self) -> Path:
        """The state folder of the data host ``local`` (``c2d init`` enrolled it)."""
        return self.home / "hosts" / "local"

    @property
    def host_settings(self) -> Settings:
        """The settings the local data host's agent runs with."""
        return self.settings.model_copy(update={"home": self.host_home, "data_host": "local"})

    @property
    def host_ctx(self) -> HostContext:
        """The local data host opened in the test's own process (its engine, registry and
        artifacts), calling the control plane's service in-process."""
        if self._host_ctx is None:
            from runner.host.context import open_host_context
            from runner.host.identity import load_identity
            from tests.kit.ports import ServicePort

            settings = self.host_settings
            identity = load_identity(settings)
            port = ServicePort(
                self.ctx.service,
                self.ctx.service.get_host("local"),
                self.ctx.artifacts,
                review=self.ctx.review,
            )
            self._host_ctx = open_host_context(
                settings, control=port, engine=Engine(settings.work_dir), identity=identity
            )
        return self._host_ctx

    # -- the operator's side ----------------------------------------------------------------

    def init(self) -> subprocess.CompletedProcess[str]:
        """Run `c2d init --json` with the operator's environment; keep the admin token."""
        done = subprocess.run(
            [str(C2D), "init", "--json"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=COMMAND_S,
            check=False,
        )
        if done.returncode == 0:
            self.admin_token = json.loads(done.stdout)["token"]
        return done

    def init_here(self) -> str:
        """Create the state folder in this process (``init_home``); keep the admin token."""
        from runner.control.install import init_home

        self.admin_token = init_home(self.settings)
        return self.admin_token

    def hello(self) -> None:
        """The local data host says hello once, from this process (what its agent does every
        pass): the environments its engine has, so jobs can be submitted before it runs."""
        from runner.host.reconciler import engine_answers, environments

        ctx = self.host_ctx
        ctx.control.hello(environments(ctx), "test-kit", engine_answers(ctx))

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> Proc:
        """Start `c2d ARGS` in its own process group, its output in ``logs/NAME-xxxxxx.log``."""
        proc = spawn(
            name,
            [str(C2D), *args],
            {**self.env, **(env or {})},
            self.log_dir,
            log_file=f"{name}-{uuid.uuid4().hex[:6]}.log",
        )
        self.procs.append(proc)
        return proc

    def wait_healthy(self, proc: Proc, timeout: float = READY_S) -> None:
        """Poll GET /v1/health until the API answers ok; fail with ``proc``'s log otherwise."""

        def healthy() -> bool:
            if not proc.alive():
                raise AssertionError(f"c2d {proc.name} exited:\n{proc.tail()}")
            with suppress(httpx.HTTPError, ValueError):
                return httpx.get(f"{self.url}/v1/health", timeout=2).json().get("ok") is True
            return False

        wait_for("the API to answer /v1/health", healthy, timeout, proc.tail())

    def start_server(self) -> Proc:
        """`c2d server`, once it answers /v1/health."""
        proc = self.start("server", "server")
        self.wait_healthy(proc)
        return proc

    def start_worker(self, concurrency: int = 1, *, home: Path | None = None, **env: str) -> Proc:
        """`c2d host start` of the data host in ``home`` (default: the local one), once
        Celery says it is ready."""
        proc = self.start(
            "worker",
            "host",
            "start",
            "--home",
            str(home or self.host_home),
            "--concurrency",
            str(concurrency),
            env=env,
        )

        def ready() -> bool:
            if not proc.alive():
                raise AssertionError(f"c2d worker exited:\n{proc.tail()}")
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
        """The last lines of every process's log, for assertion messages."""
        return "\n".join(f"--- {p.name} log:\n{p.tail()}" for p in self.procs)

    def stop(self) -> None:
        """Stop every process this installation started (newest first), close ``ctx``."""
        for proc in reversed(self.procs):
            proc.stop()
        if self._host_ctx is not None:
            self._host_ctx.close()
            self._host_ctx = None
        if self._ctx is not None:
            self._ctx.close()
            self._ctx = None

    # -- people, through the console script or the client -----------------------------------

    def command_env(self, token: str | None, config: Path | None = None) -> dict[str, str]:
        """A person's environment: the API's URL, their token, their own client config, and
        the local data host's folder (for the owner's `c2d dataset add`, run on the host)."""
        env = {k: v for k, v in self.env.items() if not k.startswith("C2D_")}
        env["C2D_URL"] = self.url
        # People at the one machine's data host: `c2d dataset add` signs with its key there.
        env["C2D_HOME"] = str(self.host_home)
        if token is not None:
            env["C2D_TOKEN"] = token
        # Each person has their own client config (absent unless they ran `c2d login`).
        env["C2D_CONFIG"] = str(config or self.root / "no-client-config.json")
        return env

    def c2d(
        self,
        *args: str,
        token: str | None = None,
        config: Path | None = None,
        timeout: float = COMMAND_S,
        env: dict[str, str] | None = None,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run `c2d ARGS` as a person with ``token`` (``stdin`` piped in, if given); return
        the finished process."""
        return subprocess.run(
            [str(C2D), *args],
            env={**self.command_env(token, config), **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            input=stdin,
            stdin=subprocess.DEVNULL if stdin is None else None,
        )

    def popen(self, *args: str, token: str | None = None) -> subprocess.Popen[str]:
        """Start `c2d ARGS` as a person with ``token`` without waiting (stdout/stderr piped)."""
        return subprocess.Popen(
            [str(C2D), *args],
            env=self.command_env(token),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )

    def json(self, *args: str, expect: int = 0, **kwargs: Any) -> Any:
        """Run `c2d ARGS --json`, check the exit code, return the one JSON document."""
        done = self.c2d(*args, "--json", **kwargs)
        assert done.returncode == expect, (
            f"c2d {' '.join(args)} exited {done.returncode}, expected {expect}\n"
            f"stdout: {done.stdout}\nstderr: {done.stderr}\n" + self.logs()
        )
        return json.loads(done.stdout)

    def dataset_add(
        self,
        token: str,
        name: str,
        path: Path | str,
        *flags: str,
        host_home: Path | None = None,
        config: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """`c2d dataset add NAME PATH FLAGS --json` on the data host (default: ``local``) as
        the holder of ``token`` (with the client ``config`` whose key signs, if given): the
        host hashes and signs, the API records."""
        return self.c2d(
            "dataset",
            "add",
            name,
            str(path),
            *flags,
            "--home",
            str(host_home or self.host_home),
            "--json",
            token=token,
            config=config,
        )

    def add_host(self, name: str, home: Path, **env: str) -> dict[str, Any]:
        """Add data host ``name`` as the admin (`c2d host add`) and enroll it into ``home``
        as its operator would (`c2d host enroll URL --home HOME`, the token piped in, ``env``
        set, for example its own C2D_DATASET_ROOTS); the enroll command's JSON (name, home,
        fingerprint, public key)."""
        token = self.json("host", "add", name, token=self.admin_token)["enroll_token"]
        done = self.c2d(
            "host", "enroll", self.url, "--home", str(home), "--json", stdin=token, env=env
        )
        assert done.returncode == 0, done.stderr
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    def add_user(self, role: str, prefix: str | None = None) -> tuple[str, str]:
        """Create a user with a fresh name, as the admin does (`c2d user add`); (name, token)."""
        name = f"{prefix or role}-{uuid.uuid4().hex[:8]}"
        user = self.json("user", "add", name, "--role", role, token=self.admin_token)
        return name, str(user["token"])

    @staticmethod
    def unused_url() -> str:
        """An API URL where nothing listens."""
        return f"http://127.0.0.1:{free_port()}"

    def client(self, token: str | None = None, timeout: float = 120.0) -> Client:
        """The Python client as the holder of ``token`` (default: the admin)."""
        return Client(self.url, token if token is not None else self.admin_token, timeout)

    def dispatcher(self) -> Dispatcher:
        """A sender on this installation's queues (to look at what is queued)."""
        return Dispatcher.for_settings(self.settings)

    # -- the job domain, in the test's own process ------------------------------------------

    def user(self, role: str, prefix: str) -> tuple[User, str]:
        """A new user with a unique name, made in this process; returns (user, token)."""
        return self.ctx.service.add_user(f"{prefix}-{uuid.uuid4().hex[:6]}", Role(role))

    def dataset(self, owner: User, folder: Path, **policy: Any) -> str:
        """Register ``folder`` on the local data host for ``owner`` with a unique name, in this
        process (as `c2d dataset add` does there); its name."""
        from tests.kit.hosts import TestHost, register_dataset

        name = f"ds-{uuid.uuid4().hex[:6]}"
        ctx = self.host_ctx
        host = TestHost(ctx.settings, ctx.identity, ctx.registry)
        register_dataset(
            self.ctx.service, owner, host, name, folder, DatasetPolicy(owner=owner.name, **policy)
        )
        return name

    def load_job(self, job_id: str) -> Job:
        """The job as the store has it (no permission check)."""
        return self.ctx.service.load_job(job_id)

    def wait_final(self, job_id: str, timeout: float = 120.0) -> Job:
        """Wait until the job is in an end state; return it as the store has it."""

        def final() -> Job | None:
            job = self.load_job(job_id)
            return job if job.state.value in ENDED else None

        return wait_for(f"job {job_id} to end", final, timeout, self.logs())

    def approved_job(
        self, folder: Path, image_id: str, *, sleep: float = 0.0, rows: int = 50, **policy: Any
    ) -> tuple[Job, User, User]:
        """An approved counting job (``tests.kit.data.counting_job``) of a new researcher on a
        new owner's new dataset (its ``policy`` fields as given), all made in this process;
        (job, owner, researcher)."""
        from jobs.bundle import pack
        from jobs.spec import JobSpec
        from tests.kit.data import counting_job, make_dataset

        owner, _ = self.user("owner", "olga")
        researcher, _ = self.user("researcher", "rita")
        dataset = self.dataset(owner, make_dataset(folder / "data", rows=rows), **policy)
        job_dir = counting_job(folder / "job", dataset, sleep=sleep)
        bundle = pack(job_dir)
        self.ctx.artifacts.put_bytes(bundle.data)
        spec = JobSpec.from_yaml(job_dir / "job.yaml")
        service = self.ctx.service
        job = service.submit(researcher, spec, None, bundle.digest, list(bundle.files), image_id)
        return service.approve(owner, job.id), owner, researcher

    def submit_http(self, token: str, job_dir: Path) -> dict[str, Any]:
        """``POST /v1/jobs`` of ``job_dir`` as a raw HTTP request (what the client sends)."""
        from jobs.bundle import pack
        from jobs.spec import JobSpec

        bundle = pack(job_dir)
        spec = JobSpec.from_yaml(job_dir / "job.yaml")
        response = httpx.post(
            f"{self.url}/v1/jobs",
            headers={"Authorization": f"Bearer {token}"},
            data={"spec": spec.model_dump_json()},
            files={"bundle": ("bundle.tar", bundle.data, "application/x-tar")},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    def api_job(self, job_id: str) -> dict[str, Any]:
        """The job as the API shows it to the admin."""
        with self.client() as admin:
            return admin.job(job_id)

    # -- its records, read straight from the database file ----------------------------------

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30) as conn:
            return conn.execute(sql, params).fetchall()

    def state(self, job_id: str) -> str:
        rows = self.query("SELECT state FROM jobs WHERE id = ?", job_id)
        assert rows, f"no job {job_id} in the store"
        return str(rows[0][0])

    def job_ids(self) -> list[str]:
        return [r[0] for r in self.query("SELECT id FROM jobs ORDER BY created")]

    def entries(self, job_id: str) -> list[dict[str, Any]]:
        """The ledger entries about ``job_id``, in order, decoded."""
        rows = self.query(
            "SELECT canonical FROM ledger_entries WHERE subject = ? ORDER BY seq", job_id
        )
        return [json.loads(bytes(r[0])) for r in rows]

    def entry_types(self, job_id: str) -> list[str]:
        return [e["type"] for e in self.entries(job_id)]

    def ledger_size(self) -> int:
        return int(self.query("SELECT COUNT(*) FROM ledger_entries")[0][0])

    def wait_ended(self, job_id: str, timeout: float = 120.0) -> dict[str, Any]:
        """Wait until the store has the job in an end state; return the admin's API view."""
        wait_for(f"job {job_id} to end", lambda: self.state(job_id) in ENDED, timeout, self.logs())
        return self.api_job(job_id)


def new_installation(
    root: Path,
    redis_url: str,
    *,
    dataset_roots: Path | str | None = None,
    origin: str | None = None,
    extra_env: dict[str, str] | None = None,
    **settings: Any,
) -> Installation:
    """An installation under ``root`` on a free port: not initialised, nothing started.

    Datasets may be registered under ``dataset_roots`` (default: the folder holding ``root``,
    where tests make theirs); its state folder ``root/home`` never is one. ``settings`` are
    any other ``Settings`` fields (``reconcile_s=1``, ``lease_s=3``...); ``extra_env`` is added
    as it is (a ``DOCKER_HOST``, say).

    People act with bare tokens in most tests (of other things than signing), so the
    installation takes unsigned actions from those without a key (``signatures="keyholders"``);
    tests of signing, the demo and the browser test keep the product's ``required``.
    """
    (root / "logs").mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("C2D_")}
    values: dict[str, Any] = {
        "home": root / "home",
        "port": free_port(),
        "bind": "127.0.0.1",
        "redis_url": redis_url,
        "origin": origin or f"c2d.test/{uuid.uuid4().hex[:8]}",
        "dataset_roots": dataset_roots if dataset_roots is not None else root.parent,
        "signatures": "keyholders",
        **settings,
    }
    env.update({f"C2D_{k.upper()}": str(v) for k, v in values.items()})
    env.update(extra_env or {})
    env["PYTHONUNBUFFERED"] = "1"
    return Installation(root=root, env=env)


@contextmanager
def running(
    root: Path,
    redis_url: str,
    *,
    server: bool = True,
    workers: int = 0,
    concurrency: int = 1,
    in_process_init: bool = False,
    **settings: Any,
) -> Iterator[Installation]:
    """An initialised installation with its API (and ``workers`` workers) running; every
    process it started is stopped at the end."""
    made = new_installation(root, redis_url, **settings)
    try:
        if in_process_init:
            made.init_here()
        else:
            done = made.init()
            assert done.returncode == 0, f"c2d init failed:\n{done.stdout}\n{done.stderr}"
        made.hello()
        if server:
            made.start_server()
        for _ in range(workers):
            made.start_worker(concurrency)
        yield made
    finally:
        made.stop()


@contextmanager
def installed(root: Path, redis_url: str, **settings: Any) -> Iterator[Installation]:
    """An installation initialised in this process, nothing started (the integration tests
    start the server and workers they need); reconciles every second unless told otherwise."""
    settings.setdefault("reconcile_s", 1.0)
    with running(root, redis_url, server=False, in_process_init=True, **settings) as made:
        yield made


@contextmanager
def module_installation(
    root: Path, redis_url: str, docker_client: Any, **settings: Any
) -> Iterator[Installation]:
    """``installed`` on a Redis database a test module owns (emptied before and after), with
    every job container it left removed at the end."""
    from tests.kit.containers import remove_job_containers
    from tests.kit.redis import flush_redis

    flush_redis(redis_url)
    with installed(root, redis_url, **settings) as made:
        yield made
        remove_job_containers(docker_client, [j.id for j in made.ctx.store.list_jobs()])
    flush_redis(redis_url)
