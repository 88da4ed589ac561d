"""What people expect of a command line, through the real console script: a token read from
stdin, who am I, log out, the version, completion, filtered job lists, a job folder that runs
as it is, and the schema of job.yaml for an editor."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.kit.data import make_dataset

if TYPE_CHECKING:
    from tests.kit.installation import Installation

pytestmark = [pytest.mark.docker, pytest.mark.redis, pytest.mark.slow]


def test_login_reads_the_token_from_stdin_and_whoami_logout_follow(
    c2d_stack: Installation, tmp_path: Path
) -> None:
    stack = c2d_stack
    name, token = stack.add_user("researcher", "rita")
    config = tmp_path / "config.json"
    no_scheme = stack.c2d("login", stack.url.removeprefix("http://"), "--with-token",
                          config=config, stdin=token)  # fmt: skip
    assert no_scheme.returncode == 2, no_scheme.stderr
    assert "give the scheme" in no_scheme.stderr
    assert not config.exists()

    login = stack.c2d("login", stack.url, "--with-token", config=config, stdin=token + "\n")
    assert login.returncode == 0, login.stderr
    assert token not in login.stderr + login.stdout  # never echoed
    assert json.loads(config.read_text())["token"] == token

    me = stack.json("whoami", config=config)
    assert (me["name"], me["role"], me["url"]) == (name, "researcher", stack.url)
    assert me["pinned_key"]

    out = stack.json("logout", config=config)
    assert out["removed"]
    assert not config.exists()
    again = stack.c2d("whoami", config=config, env={"C2D_URL": stack.url})
    assert again.returncode == 4, again.stderr  # no token any more

    as_argument = stack.c2d("login", stack.url, token, config=config)
    assert as_argument.returncode == 0, as_argument.stderr
    assert "shell's history" in as_argument.stderr


def test_version_and_completion(c2d_stack: Installation) -> None:
    version = c2d_stack.c2d("--version")
    assert version.returncode == 0
    assert version.stdout.startswith("c2d ")
    script = c2d_stack.c2d("--show-completion", env={"SHELL": "/bin/bash"})
    assert script.returncode == 0, script.stderr
    assert "_C2D_COMPLETE" in script.stdout
    words = c2d_stack.c2d(
        env={"_C2D_COMPLETE": "complete_bash", "COMP_WORDS": "c2d sta", "COMP_CWORD": "1"}
    )
    assert "status" in words.stdout


def test_jobs_filter_by_dataset_state_and_newest(c2d_stack: Installation, tmp_path: Path) -> None:
    stack = c2d_stack
    _, owner = stack.add_user("owner", "olga")
    _, researcher = stack.add_user("researcher", "rita")
    names = []
    for n in range(2):
        name = f"ds-{uuid.uuid4().hex[:6]}"
        stack.json("dataset", "add", name, str(make_dataset(tmp_path / f"d{n}")), token=owner)
        names.append(name)
    job_dir = tmp_path / "job"
    stack.json("new", str(job_dir))
    ids = [stack.json("submit", str(job_dir), "--dataset", names[n % 2], token=researcher)["id"]
           for n in range(3)]  # fmt: skip
    stack.json("cancel", ids[2], token=researcher)
    on_first = stack.json("jobs", "--dataset", names[0], token=researcher)
    assert [j["id"] for j in on_first] == [ids[0], ids[2]]
    pending = stack.json("jobs", "--dataset", names[0], "--state", "pending", token=researcher)
    assert [j["id"] for j in pending] == [ids[0]]
    newest = stack.json("jobs", "--limit", "2", token=researcher)
    assert [j["id"] for j in newest] == ids[1:]
    bad = stack.c2d("jobs", "--state", "finished", token=researcher)
    assert bad.returncode == 2


@pytest.mark.parametrize("outputs", ["loop-mounted", "--tmpfs-outputs"])
def test_new_writes_a_job_that_runs_as_it_is_on_mock_data(
    c2d_stack: Installation, tmp_path: Path, outputs: str
) -> None:
    stack = c2d_stack
    _, owner = stack.add_user("owner", "olga")
    _, researcher = stack.add_user("researcher", "rita")
    dataset = f"ds-{uuid.uuid4().hex[:6]}"
    stack.json("dataset", "add", dataset, str(make_dataset(tmp_path / "data")), token=owner)
    made = stack.json("new", str(tmp_path / "mine"), "--dataset", dataset)
    assert made["files"] == ["README.md", "job.yaml", "train.py"]
    refused = stack.c2d("new", str(tmp_path / "mine"))
    assert refused.returncode == 2  # never over an existing folder
    # As root /outputs is loop-mounted like the data host's; without root (or with the flag)
    # it is a tmpfs volume the engine mounts.
    flags = [outputs] if outputs.startswith("--") else []
    run = stack.json("run", str(tmp_path / "mine"), "--mock", dataset, *flags, token=researcher,
                     timeout=300)  # fmt: skip
    assert run["ok"], run["log"]
    assert run["metrics"] == {"files": 1.0, "rows": 50.0}
    assert "rows.csv: 50 rows, columns x, y" in run["log"]


def test_schema_job_is_the_json_schema_an_editor_validates_job_yaml_with(
    c2d_stack: Installation,
) -> None:
    schema = c2d_stack.json("schema", "job")
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert {"name", "command", "resources", "outputs"} <= set(schema["properties"])
    assert "name" in schema["required"]
    plain = c2d_stack.c2d("schema", "job")
    assert json.loads(plain.stdout)["properties"].keys() == schema["properties"].keys()
