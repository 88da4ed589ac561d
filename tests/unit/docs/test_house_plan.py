"""The house plan: which process runs a module decides its folder, and no import runs back up.

Read from the source with ``ast`` (every import, inside functions and type-checking blocks too):

- ``ledger/`` imports nothing of c2d's; ``jobs/`` imports ``ledger`` only;
- ``runner/host`` (a data host) never imports the control plane or the CLI;
- ``runner/client`` (a person's machine) imports neither the control plane, the host nor the CLI;
- ``runner/control`` never imports the CLI or the client, nor anything that drives a Docker
  engine or reads a dataset folder (the control plane has neither: data hosts do);
- the shared plumbing at ``runner/`` top imports none of the four;
- a CLI command module imports no other command module (only the shared helpers).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
RULES = {
    "ledger": ("runner", "jobs"),
    "jobs": ("runner",),
    "runner/host": ("runner.control", "runner.cli"),
    "runner/client": ("runner.control", "runner.host", "runner.cli"),
    "runner/control": (
        "runner.cli",
        "runner.client",
        "docker",
        "runner.host.engine",
        "runner.host.sandbox",
        "runner.host.pipeline",
        "runner.host.agent",
        "runner.host.datasets",
        "runner.host.images.build",
        "runner.host.images.steps",
    ),
}
TOP_FORBIDDEN = ("runner.control", "runner.cli", "runner.client")
CLI_HELPERS = {"output", "session", "options", "views", "config", "main", "__init__"}


def imports_of(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
            found += [f"{node.module}.{alias.name}" for alias in node.names]
    return found


def modules(folder: str) -> list[Path]:
    return sorted((REPO / folder).rglob("*.py"))


def forbidden(path: Path, prefixes: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(REPO)} -> {name}"
        for name in imports_of(path)
        if any(name == p or name.startswith(p + ".") for p in prefixes)
    ]


@pytest.mark.parametrize("folder", sorted(RULES))
def test_no_import_runs_back_up(folder: str) -> None:
    assert modules(folder), folder
    bad = [edge for path in modules(folder) for edge in forbidden(path, RULES[folder])]
    assert bad == []


def test_the_shared_plumbing_imports_none_of_the_rooms() -> None:
    top = sorted((REPO / "runner").glob("*.py"))
    assert [edge for path in top for edge in forbidden(path, TOP_FORBIDDEN)] == []


def test_cli_command_modules_import_no_other_command_module() -> None:
    commands = [p for p in modules("runner/cli") if p.stem not in CLI_HELPERS]
    assert len(commands) >= 6
    names = tuple(f"runner.cli.{p.stem}" for p in commands)
    bad = [edge for path in commands for edge in forbidden(path, names) if path.stem not in edge]
    assert bad == []


def test_the_checker_sees_a_forbidden_edge(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from runner.control.api import app\n    import runner.cli\n")
    assert imports_of(sample) == ["runner.control.api", "runner.control.api.app", "runner.cli"]
