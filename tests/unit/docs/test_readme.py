"""The README's reference sections come from the code: they must not drift from it."""

from __future__ import annotations

from pathlib import Path

from jobs.states import mermaid_diagram
from runner.settings import Settings

# Kept out of tests/unit itself: pytest would put that folder on sys.path, where its ledger/
# and jobs/ test folders shadow the real packages in spawned processes.
README = (Path(__file__).parents[3] / "README.md").read_text()


def test_every_setting_is_documented_with_its_description() -> None:
    for name, field in Settings.model_fields.items():
        row = f"| `C2D_{name.upper()}` |"
        assert row in README, f"README lacks the setting C2D_{name.upper()}"
        line = next(line for line in README.splitlines() if line.startswith(row))
        assert str(field.description) in line


def test_the_state_diagram_is_drawn_from_the_transition_table() -> None:
    assert mermaid_diagram().rstrip() in README


def test_the_two_commands_and_the_exit_codes_are_there() -> None:
    assert "make demo" in README
    assert "make test" in README
    for code in range(6):
        assert f"| {code} |" in README
