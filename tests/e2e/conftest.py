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

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.kit.installation import COMMAND_S, REPO, Installation, new_installation
from tests.kit.procs import redis_db_url

E2E_REDIS_DB = int(os.environ.get("C2D_E2E_REDIS_DB", "13"))


def bare_stack(root: Path, redis: str, extra_env: dict[str, str] | None = None) -> Installation:
    """An installation under `root` on a free port: not initialised, nothing started.

    Its dataset root is the folder holding `root` (for the shared stack, the session's
    temporary folder), so each test's own folders are datasets it may register; the stack's
    state folder inside it never is.
    """
    return new_installation(
        root, redis, origin=f"c2d.e2e/{root.name}", reconcile_s=1, extra_env=extra_env
    )


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
) -> Iterator[Installation]:
    """Init a state folder under `root`, start the API (and a worker), yield, stop them.

    Usable by any test that needs its own installation (other settings, a fresh ledger).
    """
    stack = bare_stack(root, redis, extra_env)
    done = stack.init()
    assert done.returncode == 0, f"c2d init failed:\n{done.stdout}\n{done.stderr}"
    try:
        stack.start_server()
        if worker:
            stack.start("worker", "worker", "--concurrency", "1")
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def c2d_stack(
    tmp_path_factory: pytest.TempPathFactory,
    docker_client: Any,
    e2e_redis_url: str,
    job_image: str,
) -> Iterator[Installation]:
    """One running c2d (API + worker) shared by the end-to-end tests of a session."""
    with running_stack(tmp_path_factory.mktemp("c2d-stack"), e2e_redis_url) as stack:
        yield stack
        for proc in stack.procs:
            assert proc.alive(), f"{proc.name} died during the tests:\n{proc.tail()}"


@pytest.fixture
def installation(
    tmp_path: Path, redis_url: str, docker_client: Any, job_image: str
) -> Iterator[Installation]:
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


CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root, where Chromium's own sandbox cannot start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's Chromium (`make browser`, or `C2D_CHROMIUM`), launched headless by Playwright
    for Python for one test module (its driver's event loop then stops); skips on a laptop
    without either, fails when CI is set."""
    from tests.conftest import missing

    path = os.environ.get("C2D_CHROMIUM") or shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("Playwright for Python", "make dev")
    if path is None:
        missing("Chromium", "make browser")
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
