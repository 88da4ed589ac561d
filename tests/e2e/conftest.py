"""A running c2d stack for end-to-end tests, started the way an operator starts one.

`c2d_stack` runs `c2d init`, `c2d server` and `c2d worker` as real processes in a temporary
C2D_HOME, on a free port, with a Redis database number of its own, and stops them (and only
them) at the end. Tests talk to it only through the `c2d` console script, as people do:
`stack.c2d(...)` runs one command and returns the finished process, `stack.json(...)` runs it
with `--json` and returns the parsed document. Needs Docker, Redis and the job image: the
fixtures `docker_client`, `redis_url` and `job_image` skip on a laptop without them and fail
when CI is set.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from prockit import Proc, free_port, redis_db_url, spawn

REPO = Path(__file__).resolve().parents[2]
C2D = Path(sys.executable).with_name("c2d")
E2E_REDIS_DB = int(os.environ.get("C2D_E2E_REDIS_DB", "13"))
READY_S = 60.0
COMMAND_S = 180.0


@dataclass
class Stack:
    """One c2d installation: its state folder, API URL, admin token and processes.

    `running_stack` gives one already initialised and started; `installation` gives a bare one
    for tests of `c2d init` / `c2d up` themselves.
    """

    home: Path
    url: str
    env: dict[str, str]
    log_dir: Path
    admin_token: str = ""
    procs: list[Proc] = field(default_factory=list)

    # -- the operator's side -----------------------------------------------------------

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

    def start(self, name: str, args: list[str]) -> Proc:
        """Start `c2d ARGS` (server, worker, up) in its own process group, logging to a file."""
        proc = spawn(name, [str(C2D), *args], self.env, self.log_dir)
        self.procs.append(proc)
        return proc

    def wait_healthy(self, proc: Proc, timeout: float = READY_S) -> None:
        """Poll GET /v1/health until the API answers ok; fail with `proc`'s log otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not proc.alive():
                pytest.fail(f"c2d {proc.name} exited with {proc.popen.returncode}:\n{proc.tail()}")
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=2).json().get("ok") is True:
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.2)
        pytest.fail(f"c2d {proc.name} did not become healthy in {timeout:.0f} s:\n{proc.tail()}")

    def stop(self) -> None:
        """Stop every process this stack started, newest first."""
        for proc in reversed(self.procs):
            proc.stop()

    # -- the people's side -------------------------------------------------------------

    def command_env(self, token: str | None, config: Path | None = None) -> dict[str, str]:
        """The environment of one `c2d` command run by a person holding `token`."""
        env = dict(self.env)
        env["C2D_URL"] = self.url
        if token is not None:
            env["C2D_TOKEN"] = token
        # Each person has their own client config (absent unless they ran `c2d login`).
        env["C2D_CONFIG"] = str(config or self.home.parent / "no-client-config.json")
        return env

    def c2d(
        self,
        *args: str,
        token: str | None = None,
        config: Path | None = None,
        timeout: float = COMMAND_S,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run `c2d ARGS` as a person with `token`; return the finished process."""
        full_env = self.command_env(token, config)
        full_env.update(env or {})
        return subprocess.run(
            [str(C2D), *args],
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )

    def popen(self, *args: str, token: str | None = None) -> subprocess.Popen[str]:
        """Start `c2d ARGS` as a person with `token` without waiting (stdout/stderr piped)."""
        return subprocess.Popen(
            [str(C2D), *args],
            env=self.command_env(token),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )

    @staticmethod
    def unused_url() -> str:
        """An API URL where nothing listens."""
        return f"http://127.0.0.1:{free_port()}"

    def json(self, *args: str, expect: int = 0, **kwargs: Any) -> Any:
        """Run `c2d ARGS --json`, check the exit code, return the one JSON document."""
        done = self.c2d(*args, "--json", **kwargs)
        assert done.returncode == expect, (
            f"c2d {' '.join(args)} exited {done.returncode}, expected {expect}\n"
            f"stdout: {done.stdout}\nstderr: {done.stderr}\n" + self.logs()
        )
        return json.loads(done.stdout)

    def add_user(self, role: str, prefix: str | None = None) -> tuple[str, str]:
        """Create a user with a fresh name; return (name, token)."""
        name = f"{prefix or role}-{uuid.uuid4().hex[:8]}"
        user = self.json("user", "add", name, "--role", role, token=self.admin_token)
        return name, user["token"]

    def logs(self) -> str:
        """The last lines of every process's log, for assertion messages."""
        return "\n".join(f"--- {p.name} log:\n{p.tail()}" for p in self.procs)


def stack_env(home: Path, redis: str, port: int, dataset_roots: Path) -> dict[str, str]:
    """The environment of the operator's processes: settings only through C2D_ variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("C2D_")}
    env.update(
        {
            "C2D_HOME": str(home),
            "C2D_DATASET_ROOTS": str(dataset_roots),
            "C2D_PORT": str(port),
            "C2D_BIND": "127.0.0.1",
            "C2D_REDIS_URL": redis,
            "C2D_ORIGIN": f"c2d.e2e/{home.parent.name}",
            "C2D_RECONCILE_S": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def bare_stack(root: Path, redis: str, extra_env: dict[str, str] | None = None) -> Stack:
    """A Stack under `root` on a free port: not initialised, nothing started.

    Its dataset root is the folder holding `root` (for the shared stack, the session's
    temporary folder), so each test's own folders are datasets it may register; the stack's
    state folder inside it never is.
    """
    log_dir = root / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = stack_env(root / "home", redis, port, root.parent)
    env.update(extra_env or {})
    return Stack(home=root / "home", url=f"http://127.0.0.1:{port}", env=env, log_dir=log_dir)


def fresh_redis(url: str, db: int) -> str:
    """`url` on database `db`, emptied: only end-to-end tests use these numbers."""
    import redis

    db_url = redis_db_url(url, db)
    client = redis.Redis.from_url(db_url)
    client.flushdb()
    client.close()
    return db_url


@pytest.fixture(scope="session")
def e2e_redis_url(redis_url: str) -> str:
    """The test Redis, on a database number of the end-to-end tests' own (emptied first)."""
    return fresh_redis(redis_url, E2E_REDIS_DB)


@contextmanager
def running_stack(
    root: Path, redis: str, *, worker: bool = True, extra_env: dict[str, str] | None = None
) -> Iterator[Stack]:
    """Init a state folder under `root`, start the API (and a worker), yield, stop them.

    Usable by any test that needs its own installation (other settings, a fresh ledger).
    """
    stack = bare_stack(root, redis, extra_env)
    done = stack.init()
    assert done.returncode == 0, f"c2d init failed:\n{done.stdout}\n{done.stderr}"
    try:
        stack.wait_healthy(stack.start("server", ["server"]))
        if worker:
            stack.start("worker", ["worker", "--concurrency", "1"])
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def c2d_stack(
    tmp_path_factory: pytest.TempPathFactory,
    docker_client: Any,
    e2e_redis_url: str,
    job_image: str,
) -> Iterator[Stack]:
    """One running c2d (API + worker) shared by the end-to-end tests of a session."""
    with running_stack(tmp_path_factory.mktemp("c2d-stack"), e2e_redis_url) as stack:
        yield stack
        for proc in stack.procs:
            assert proc.alive(), f"{proc.name} died during the tests:\n{proc.tail()}"


@pytest.fixture
def installation(
    tmp_path: Path, redis_url: str, docker_client: Any, job_image: str
) -> Iterator[Stack]:
    """A bare installation on a Redis database of its own (so its worker never takes the
    shared stack's jobs); whatever the test starts is stopped afterwards."""
    stack = bare_stack(tmp_path / "installation", fresh_redis(redis_url, E2E_REDIS_DB + 1))
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def patients_dir(patients_source: Path, tmp_path: Path) -> Path:
    """The test's own copy of the synthetic dataset: a folder one owner may register (another
    owner may not register a folder someone else registered)."""
    folder = tmp_path / "patients"
    shutil.copytree(patients_source, folder)
    return folder


@pytest.fixture(scope="session")
def patients_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic private dataset (examples/make_dataset.py), readable by the job's uid."""
    folder = tmp_path_factory.mktemp("patients")
    subprocess.run(
        [sys.executable, str(REPO / "examples" / "make_dataset.py"), str(folder), "--rows", "600"],
        check=True,
        capture_output=True,
        timeout=COMMAND_S,
    )
    folder.chmod(0o755)
    for path in folder.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return folder


@pytest.fixture
def example_job(tmp_path: Path) -> Callable[[str], Path]:
    """`example_job(NAME)`: a fresh copy of examples/jobs/NAME that the test may change."""

    def copy(name: str) -> Path:
        target = tmp_path / "jobs" / f"{name}-{uuid.uuid4().hex[:6]}"
        shutil.copytree(REPO / "examples" / "jobs" / name, target)
        return target

    return copy
