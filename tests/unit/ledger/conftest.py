"""Fixtures for the ledger's unit tests: real SQLite files in a temporary directory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ledger import Ledger

ORIGIN = "c2d.test/ledger"


class TickingClock:
    """A clock that moves one second per reading, so entry times are predictable."""

    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def make_ledger(tmp_path: Path) -> Iterator[Callable[..., Ledger]]:
    """Open ledgers under tmp_path (default file names); closes them all afterwards."""
    opened: list[Ledger] = []

    def make(db: str = "ledger.db", key: str = "ledger.key", origin: str = ORIGIN) -> Ledger:
        ledger = Ledger(tmp_path / db, tmp_path / key, origin, clock=TickingClock())
        opened.append(ledger)
        return ledger

    yield make
    for ledger in opened:
        ledger.close()


@pytest.fixture
def ledger(make_ledger: Callable[..., Ledger]) -> Ledger:
    """An empty ledger in a fresh SQLite file."""
    return make_ledger()


def fill(ledger: Ledger, count: int, jobs: int = 3) -> None:
    """Append ``count`` job-shaped entries spread over ``jobs`` subjects."""
    ledger.append_many(
        ("job.submitted", "alice", f"job-{n % jobs}", {"n": n, "digest": "sha256:" + "ab" * 32})
        for n in range(count)
    )
