"""Fixtures for the ledger's unit tests: real SQLite files in a temporary directory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ledger_testkit import ORIGIN, TickingClock

from ledger import Ledger


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
