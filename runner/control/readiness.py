"""Readiness: whether this control plane can do its work now, check by check.

``/v1/health`` says only that the API process answers (liveness). ``/v1/ready`` asks what the
work needs, each check quick and bounded by a short timeout so a probe never hangs:

- ``database``: the state database takes a write lock (``BEGIN IMMEDIATE``, then rolled back:
  nothing is written);
- ``ledger_key``: the signing key file reads, is private, and is the key the open ledger signs
  with (a key lost or replaced on disk would stop the next start);
- ``redis``: the broker answers a ping;
- ``host:NAME``, per enrolled data host: its agent said hello within ``host_stale_s`` and its
  Docker engine answered the ping the agent made just before (``runner.host.reconciler``).

A host added but not enrolled yet is not checked: it has never run anything. Details name what
failed and what to do; they never carry the Redis URL (it may hold a password).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from jobs.safe_text import escape
from jobs.stats import HostBeat
from ledger.errors import LedgerError
from ledger.keys import load_signing_key, raw_public_key
from runner.context import Context

TIMEOUT_S = 2.0
"""The longest any one check waits (database lock, Redis connect and answer)."""
MAX_DETAIL = 300


HOST_PREFIX = "host:"
"""The name of a data host's check is this prefix and the host's name."""


@dataclass(frozen=True)
class Check:
    """One check's verdict; ``detail`` says what was seen (and, when not ok, what to do)."""

    name: str
    ok: bool
    detail: str

    def view(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail}


def host_problem(beat: HostBeat, now: float, stale_s: float) -> str | None:
    """What keeps an enrolled data host from running jobs, by its last hello; ``None``: fine."""
    if beat.last_seen is None:
        return "has not said hello since it enrolled; start its agent there (`c2d host start`)"
    age = now - beat.last_seen
    if age > stale_s:
        return (
            f"last said hello {age:.0f} s ago (more than C2D_HOST_STALE_S = {stale_s:g}); is its "
            "agent (`c2d host start`) running, and can it reach this API?"
        )
    if beat.engine_ok is None:
        return "its agent does not say whether its Docker engine answers; upgrade c2d there"
    if not beat.engine_ok:
        return "its Docker engine did not answer at the last hello; start the engine there"
    return None


def _failure(exc: BaseException) -> str:
    return escape(f"{type(exc).__name__}: {exc}")[:MAX_DETAIL]


class Readiness:
    """The checks of one control plane (see the module docstring); thread-safe."""

    def __init__(self, ctx: Context, *, clock: Callable[[], float] = time.time) -> None:
        self.ctx = ctx
        self.clock = clock
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._redis = redis.Redis.from_url(
            ctx.settings.redis_url, socket_connect_timeout=TIMEOUT_S, socket_timeout=TIMEOUT_S
        )

    def checks(self, *, hosts: bool = True) -> list[Check]:
        """Every check, in order; with ``hosts`` false, only the control plane's own."""
        found = [self._database(), self._ledger_key(), self._broker()]
        if hosts:
            found += self._hosts()
        return found

    def _database(self) -> Check:
        path = self.ctx.settings.db_path
        try:
            with self._lock:
                if self._db is None:
                    self._db = sqlite3.connect(
                        str(path), timeout=TIMEOUT_S, isolation_level=None, check_same_thread=False
                    )
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute("ROLLBACK")
        except sqlite3.Error as exc:
            return Check(
                "database",
                False,
                f"{path} takes no write ({_failure(exc)}); check the disk, the file's owner and "
                "mode, and that no other process holds the database locked",
            )
        return Check("database", True, "writable")

    def _ledger_key(self) -> Check:
        path = self.ctx.settings.key_path
        try:
            key = load_signing_key(path)
        except (OSError, LedgerError) as exc:
            return Check("ledger_key", False, f"{path}: {_failure(exc)}")
        if raw_public_key(key) != self.ctx.ledger.public_key():
            return Check(
                "ledger_key",
                False,
                f"{path} is not the key this ledger signs with; restore the right key file "
                "from a backup before the API restarts",
            )
        return Check("ledger_key", True, "readable, and the ledger's own")

    def _broker(self) -> Check:
        try:
            self._redis.ping()
        except redis.RedisError as exc:
            return Check(
                "redis",
                False,
                f"does not answer ({_failure(exc)}); jobs wait in the store until it does. Start "
                "Redis, or check C2D_REDIS_URL",
            )
        return Check("redis", True, "answers")

    def _hosts(self) -> list[Check]:
        now = self.clock()
        stale_s = self.ctx.settings.host_stale_s
        found = []
        for host in self.ctx.service.list_hosts():
            if host.public_key is None:
                continue
            beat = HostBeat(host.name, True, host.last_seen, host.engine_ok)
            problem = host_problem(beat, now, stale_s)
            detail = problem or f"said hello {max(0.0, now - (host.last_seen or now)):.0f} s ago"
            found.append(Check(f"{HOST_PREFIX}{host.name}", problem is None, detail))
        return found

    def close(self) -> None:
        """Close the database connection and the Redis client."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
        self._redis.close()
