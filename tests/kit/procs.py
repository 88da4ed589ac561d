"""Processes the suites start, and waiting on them with a deadline.

Each process runs in a session of its own with its output appended to a log file, so a test
signals exactly that process group (never anything by name) and can show the log when it
fails. Part of the one test kit (``tests.kit``), shared by the suites and the benchmarks.
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
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

T = TypeVar("T")


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_db_url(url: str, db: int) -> str:
    """``url`` with its database number replaced by ``db``."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


def wait_for(
    what: str, probe: Callable[[], T | None], timeout: float, logs: str = "", poll: float = 0.1
) -> T:
    """Poll ``probe`` every ``poll`` s until it returns something truthy; raise
    ``TimeoutError`` naming ``what`` (and showing ``logs``) after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        got = probe()
        if got:
            return got
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}\n{logs}")
        time.sleep(poll)


@dataclass
class Proc:
    """A process a test started, in its own process group, logging to ``log``."""

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
        """SIGTERM the process group, then SIGKILL what is left after ``grace`` (children such
        as pool workers included)."""
        if self.popen.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                self.popen.wait(grace)
        self.kill()


def spawn(
    name: str, argv: list[str], env: dict[str, str], log_dir: Path, *, log_file: str = ""
) -> Proc:
    """Start ``argv`` in a new session, its stdout and stderr appended to
    ``log_dir/LOG_FILE`` (``NAME.log`` by default)."""
    log = log_dir / (log_file or f"{name}.log")
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
