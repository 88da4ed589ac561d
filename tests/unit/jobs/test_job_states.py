"""The transition table, checked over every (from, to) pair, and the diagram drawn from it."""

import itertools

import pytest

from jobs.errors import Conflict, InvalidTransition
from jobs.states import (
    TERMINAL,
    TRANSITIONS,
    JobState,
    can_transition,
    check_transition,
    mermaid_diagram,
    transition_pairs,
)

S = JobState

# Written out by hand from design.md, independently of TRANSITIONS, so a change to the table
# that design.md does not sanction fails here.
ALLOWED = {
    (S.PENDING, S.APPROVED),
    (S.PENDING, S.REJECTED),
    (S.PENDING, S.CANCELLED),
    (S.APPROVED, S.RUNNING),
    (S.APPROVED, S.CANCELLED),
    (S.RUNNING, S.SUCCEEDED),
    (S.RUNNING, S.FAILED),
    (S.RUNNING, S.CANCELLED),
    (S.SUCCEEDED, S.RELEASED),
    # The owner refuses a succeeded job's outputs (the browser review issue): they never leave.
    (S.SUCCEEDED, S.CANCELLED),
}


@pytest.mark.parametrize(("a", "b"), list(itertools.product(JobState, JobState)))
def test_every_pair(a, b):
    if (a, b) in ALLOWED:
        check_transition(a, b)
        assert can_transition(a, b)
    else:
        with pytest.raises(InvalidTransition) as info:
            check_transition(a, b, "j1")
        assert info.value.from_state == a.value
        assert info.value.to_state == b.value
        assert isinstance(info.value, Conflict)
        assert info.value.kind == "conflict"
        assert f"from {a.value} to {b.value}" in str(info.value)


def test_table_covers_every_state_and_matches_design():
    assert set(TRANSITIONS) == set(JobState)
    assert set(transition_pairs()) == ALLOWED


def test_terminal_states():
    assert {S.REJECTED, S.FAILED, S.RELEASED, S.CANCELLED} == TERMINAL


def test_state_values_are_the_strings_people_see():
    assert [s.value for s in JobState] == [
        "pending",
        "approved",
        "rejected",
        "running",
        "succeeded",
        "failed",
        "released",
        "cancelled",
    ]
    assert str(S.RUNNING) == "running"
    assert S("running") is S.RUNNING


def test_diagram_has_one_arrow_per_allowed_transition():
    text = mermaid_diagram()
    lines = text.splitlines()
    assert lines[0] == "stateDiagram-v2"
    arrows = {tuple(line.split(" --> ")) for line in lines[1:]}
    expected = {(a.value, b.value) for a, b in ALLOWED}
    expected |= {("[*]", "pending")} | {(s.value, "[*]") for s in TERMINAL}
    assert {(a.strip(), b.strip()) for a, b in arrows} == expected
