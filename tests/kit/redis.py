"""Redis for the suites and the benchmarks: a private ``redis-server``, or a database of the
shared one emptied for a test module.

``RedisServer`` runs on a free port in a folder of its own (with or without persistence), so a
fault case may stop and restart it, and a benchmark is not slowed by another installation's
queue; ``flush_redis`` empties one database of the shared Redis, which a test module owns.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from tests.kit.procs import Proc, free_port, spawn, wait_for


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


def flush_redis(url: str) -> None:
    """Empty the Redis database at ``url`` (a test module owns one)."""
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
