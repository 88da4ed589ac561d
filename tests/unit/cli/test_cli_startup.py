"""`c2d` starts at once: a command imports what it needs when it runs, nothing more.

The real console script runs in a fresh interpreter, which writes down ``sys.modules`` as
it exits, so what is listed is what a person's `c2d --help` or `c2d status JOB` loads.
Start-up time itself is the benchmark's (`bench/cli_bench.py`), beside `python -c pass`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

C2D = Path(sys.executable).with_name("c2d")
# Heavy for a command that only reads or shows: data libraries, the Docker SDK, the job
# domain's pydantic models, the signing library, the server side, the broker.
HEAVY = (
    "pandas", "numpy", "pyarrow", "sklearn", "skops", "docker", "jobs.models", "jobs.spec",
    "jobs.store", "cryptography", "ledger.log", "yaml", "pydantic_settings", "celery",
    "redis", "fastapi", "starlette", "uvicorn", "sse_starlette", "runner.host",
    "runner.control", "rich",
)  # fmt: skip


def imported(*args: str, tmp_path: Path) -> set[str]:
    """The modules `c2d ARGS` imports (stdout and stderr are pipes, as in a script)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("C2D_")}
    env["C2D_CONFIG"] = str(tmp_path / "none.json")
    listing = tmp_path / "modules.json"
    snippet = (
        "import atexit, json, os, runpy, sys\n"
        "loaded = lambda: sorted(k for k, v in sys.modules.items() if v is not None)\n"
        f"write = lambda: open({str(listing)!r}, 'w').write(json.dumps(loaded()))\n"
        "atexit.register(write)\n"
        "real_exit = os._exit\n"
        "os._exit = lambda code: (write(), real_exit(code))\n"  # c2d ends with os._exit
        f"sys.argv = [{str(C2D)!r}, *{list(args)!r}]\n"
        f"runpy.run_path({str(C2D)!r}, run_name='__main__')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", snippet],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert listing.exists(), done.stderr
    return set(json.loads(listing.read_text()))


def heavy_in(names: set[str], extra: tuple[str, ...] = ()) -> list[str]:
    roots = (*HEAVY, *extra)
    return sorted(n for n in names if any(n == r or n.startswith(r + ".") for r in roots))


def test_help_loads_no_http_client_and_nothing_heavy(tmp_path: Path) -> None:
    names = imported("--help", tmp_path=tmp_path)
    assert "runner.cli.researcher" in names  # it did list the commands
    assert heavy_in(names, ("httpx", "runner.client.api")) == []


def test_status_loads_the_http_client_and_nothing_heavy(tmp_path: Path) -> None:
    from tests.kit.procs import free_port

    url = f"http://127.0.0.1:{free_port()}"  # nothing answers: the command gets that far
    names = imported("--url", url, "--token", "t", "status", "abc123", tmp_path=tmp_path)
    assert "httpx" in names
    assert heavy_in(names) == []


@pytest.mark.parametrize(
    "command",
    [
        ("submit",),
        ("fetch",),
        ("dataset",),
        ("dataset", "add"),
        ("ledger",),
        ("worker",),
        ("host",),
        ("host", "start"),
        ("host", "enroll"),
        ("hosts",),
    ],
)
def test_each_command_help_stays_light(command: tuple[str, ...], tmp_path: Path) -> None:
    names = imported(*command, "--help", tmp_path=tmp_path)
    assert heavy_in(names, ("httpx",)) == []


def test_hosts_loads_only_its_module_and_the_http_client(tmp_path: Path) -> None:
    from tests.kit.procs import free_port

    url = f"http://127.0.0.1:{free_port()}"  # nothing answers: the command gets that far
    names = imported("--url", url, "--token", "t", "hosts", tmp_path=tmp_path)
    assert "runner.cli.hosts" in names
    assert "runner.cli.researcher" not in names  # one command builds only its module
    assert heavy_in(names) == []


@pytest.mark.parametrize(
    ("args", "service"),
    [
        (["server"], True),
        (["up", "--port", "8000"], True),
        (["worker"], True),
        (["host", "start", "--home", "/srv/c2d"], True),
        (["--url", "http://api", "host", "start"], True),
        (["host", "enroll", "http://api"], False),
        (["host", "add", "start"], False),  # a host named "start" is no service
        (["hosts"], False),
        (["dataset", "add", "up", "/data/up"], False),  # nor a dataset named "up"
        (["--token", "up", "status", "job1"], False),
        ([], False),
    ],
)
def test_only_services_keep_the_collector_and_a_normal_exit(args: list[str], service: bool) -> None:
    # A person's command runs with the cyclic collector off and ends with os._exit; a service
    # (an API, a data host's agent) runs for days and must not.
    from runner.cli import long_running

    assert long_running(args) is service


def test_the_check_sees_a_heavy_import() -> None:
    assert heavy_in({"pandas.core", "jobs.safe_text", "httpx"}, ("httpx",)) == [
        "httpx",
        "pandas.core",
    ]
