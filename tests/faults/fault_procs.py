"""Processes of the fault-injection suite: each in its own process group, and its own Redis.

``spawn`` (tests/prockit.py) starts a process in a new session with its output in a log file,
so a case can SIGKILL or SIGTERM exactly that process group (never anything by name).
``RedisServer`` is a ``redis-server`` of the suite's own on a free port, which a case may
restart.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from prockit import Proc, free_port, spawn, wait_for


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
