"""Helpers shared by the ledger's unit tests (a uniquely named module, not conftest)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ledger import Ledger

ORIGIN = "c2d.test/ledger"


class TickingClock:
    """A clock that moves one second per reading, so entry times are predictable."""

    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def fill(ledger: Ledger, count: int, jobs: int = 3) -> None:
    """Append ``count`` job-shaped entries spread over ``jobs`` subjects."""
    ledger.append_many(
        ("job.submitted", "alice", f"job-{n % jobs}", {"n": n, "digest": "sha256:" + "ab" * 32})
        for n in range(count)
    )
