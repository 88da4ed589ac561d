"""Processes of the fault-injection suite: each in its own process group, and its own Redis.

``spawn`` starts a process in a new session with its output in a log file, so a case can
SIGKILL or SIGTERM exactly that process group (never anything by name). ``RedisServer`` is a
``redis-server`` of the suite's own on a free port, which a case may restart.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, logs: str = "") -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        got = probe()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{logs}")
        time.sleep(0.1)


@dataclass
class Proc:
    """A process started by the suite, in its own process group, logging to a file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self, lines: int = 60) -> str:
        return f"--- {self.name}:\n" + "\n".join(self.text().splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL the whole process group: no handler runs, nothing is cleaned up."""
        with suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(30)

    def stop(self, grace: float = 30.0) -> None:
        """SIGTERM the process group, then SIGKILL what is left after ``grace``."""
        if self.popen.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                self.popen.wait(grace)
        self.kill()


def spawn(name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> Proc:
    """Start ``argv`` in a new session, stdout and stderr appended to ``log_dir/NAME.log``."""
    log = log_dir / f"{name}.log"
    with log.open("ab") as handle:
        popen = subprocess.Popen(
            argv,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Proc(name, popen, log)


class RedisServer:
    """A ``redis-server`` of the suite's own on a fixed free port, which can be restarted.

    ``persistent`` turns on the append-only file with an fsync per write, so a restart keeps
    every queued and unacknowledged message; without it a restart loses everything.
    """

    def __init__(self, root: Path, *, persistent: bool) -> None:
        self.root = root
        self.persistent = persistent
        self.port = free_port()
        self.proc: Proc | None = None
        root.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> Any:
        import redis

        return redis.Redis.from_url(self.url, socket_connect_timeout=2, socket_timeout=5)

    def start(self) -> None:
        durable = ["--appendonly", "yes", "--appendfsync", "always"]
        argv = [
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.root), "--save", "",
            *(durable if self.persistent else ["--appendonly", "no"]),
        ]  # fmt: skip
        self.proc = spawn("redis", argv, dict(os.environ), self.root)

        def answers() -> bool:
            client = self.client()
            try:
                return bool(client.ping())
            except Exception:
                return False
            finally:
                client.close()

        wait_for(f"redis-server on port {self.port}", answers, 20, self.proc.tail())

    def stop(self) -> None:
        """Shut it down (SIGTERM: redis flushes its append-only file when it has one)."""
        if self.proc is not None:
            self.proc.stop(20)
            self.proc = None

    def restart(self, down_s: float = 1.0) -> None:
        """Stop, stay down ``down_s`` seconds, start again on the same port."""
        self.stop()
        time.sleep(down_s)
        self.start()
