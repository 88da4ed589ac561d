"""The example notebook (examples/researcher.ipynb) runs, cell by cell, in a real Jupyter
kernel against a running installation, as a researcher would run it."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.kit.installation import REPO

if TYPE_CHECKING:
    from tests.kit.installation import Installation

pytestmark = [pytest.mark.docker, pytest.mark.redis, pytest.mark.slow]


def test_the_example_notebook_runs_against_an_installation(
    c2d_stack: Installation, patients_dir: Path, tmp_path: Path
) -> None:
    import nbformat
    from nbclient import NotebookClient

    stack = c2d_stack
    _, owner = stack.add_user("owner", "alice")
    _, researcher = stack.add_user("researcher", "bob")
    dataset = f"patients-{uuid.uuid4().hex[:6]}"
    stack.json("dataset", "add", dataset, str(patients_dir), "--schema", "stats",
               "--release-on-success", token=owner)  # fmt: skip
    # The owner trusted this code for Bob, any params: the notebook's job runs unattended.
    work = tmp_path / "examples"
    shutil.copytree(REPO / "examples" / "jobs", work / "jobs")
    first = stack.json("submit", str(work / "jobs" / "diabetes-classifier"), "--dataset",
                       dataset, token=researcher)  # fmt: skip
    stack.json("approve", first["id"], token=owner)
    stack.json("trust", first["id"], "--any-params", token=owner)
    stack.wait_ended(first["id"], timeout=300)

    # Bob logged in once, as the README says; the kernel reads what login saved.
    config = tmp_path / "bob.json"
    login = stack.c2d("login", stack.url, "--with-token", config=config, stdin=researcher)
    assert login.returncode == 0, login.stderr
    notebook = nbformat.read(REPO / "examples" / "researcher.ipynb", as_version=4)
    env = {k: v for k, v in stack.command_env(None, config).items() if k != "C2D_URL"}
    env["C2D_EXAMPLE_DATASET"] = dataset
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": work}}
    )
    client.execute(env=env)  # the kernel's environment: Bob's, nothing of the operator's

    def shown(starts: str) -> str:
        """What the code cell whose source starts with ``starts`` printed and returned."""
        cell = next(
            c for c in notebook.cells if c.cell_type == "code" and c.source.startswith(starts)
        )
        return "".join(
            o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for o in cell.outputs
        )

    assert "researcher" in shown("import os")
    assert "diabetes" in shown("schema = ")  # the columns, never a row
    assert "released" in shown("job.wait(")  # the progress line, then the state
    assert shown("job.wait(").endswith("'released'")
    assert "accuracy" in shown("job.metrics")
    assert "'pinned'" in shown("result = job.fetch")  # checked against the key login pinned
    assert "sklearn.tree._tree.Tree" in shown("result.untrusted_types()")
    assert shown("model = ") == "('RandomForestClassifier', 8)"  # max_depth as submitted
    assert (work / "out" / "model.skops").is_file()
    assert (work / "out" / "receipt.json").is_file()
    assert (work / "mock" / "patients.csv").is_file()
