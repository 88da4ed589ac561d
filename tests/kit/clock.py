"""A clock the test moves by hand, so leases expire exactly when the test says."""

from __future__ import annotations

import time


class Clock:
    """``Clock(now)`` starts at ``now`` and moves only by ``advance``; ``Clock()`` follows real
    time plus what the test advanced (for code that also waits on real things: containers)."""

    def __init__(self, now: float | None = None) -> None:
        self.start = now
        self.offset = 0.0

    def __call__(self) -> float:
        return (time.time() if self.start is None else self.start) + self.offset

    @property
    def now(self) -> float:
        return self()

    def advance(self, seconds: float) -> None:
        self.offset += seconds
