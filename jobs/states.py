"""Job states and the one table of allowed transitions.

``TRANSITIONS`` is the single source of truth: ``check_transition`` enforces it in Python, the
store mirrors it into SQLite (a trigger refuses any other state change), and
``mermaid_diagram`` draws the README's state diagram from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

from jobs.errors import InvalidTransition


class JobState(StrEnum):
    """Where a job is in its life; the value is what the store, API and CLI show."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RELEASED = "released"
    CANCELLED = "cancelled"


S = JobState

TRANSITIONS: Mapping[JobState, frozenset[JobState]] = MappingProxyType(
    {
        S.PENDING: frozenset({S.APPROVED, S.REJECTED, S.CANCELLED}),
        S.APPROVED: frozenset({S.RUNNING, S.CANCELLED}),
        S.RUNNING: frozenset({S.SUCCEEDED, S.FAILED, S.CANCELLED}),
        # A succeeded job is released, or its owner refuses its outputs (it is then cancelled).
        S.SUCCEEDED: frozenset({S.RELEASED, S.CANCELLED}),
        S.FAILED: frozenset(),
        S.REJECTED: frozenset(),
        S.RELEASED: frozenset(),
        S.CANCELLED: frozenset(),
    }
)
"""Allowed state changes, from ``design.md``: every pair not listed here is refused."""

TERMINAL: frozenset[JobState] = frozenset(s for s, targets in TRANSITIONS.items() if not targets)
"""States a job never leaves."""

INITIAL = S.PENDING


def can_transition(from_state: JobState, to_state: JobState) -> bool:
    """Tell whether the table allows ``from_state -> to_state``."""
    return to_state in TRANSITIONS[from_state]


def check_transition(from_state: JobState, to_state: JobState, job_id: str | None = None) -> None:
    """Raise ``InvalidTransition`` unless the table allows ``from_state -> to_state``."""
    if not can_transition(from_state, to_state):
        raise InvalidTransition(from_state.value, to_state.value, job_id)


def transition_pairs() -> list[tuple[JobState, JobState]]:
    """Every allowed ``(from, to)`` pair, in enum order (stable for diagrams and SQL)."""
    return [(a, b) for a in JobState for b in JobState if b in TRANSITIONS[a]]


def mermaid_diagram() -> str:
    """Render the transition table as a mermaid ``stateDiagram-v2`` for the README."""
    lines = ["stateDiagram-v2", f"    [*] --> {INITIAL.value}"]
    lines += [f"    {a.value} --> {b.value}" for a, b in transition_pairs()]
    lines += [f"    {s.value} --> [*]" for s in JobState if s in TERMINAL]
    return "\n".join(lines) + "\n"
