"""``C2D_LOG_FORMAT=json``: one JSON object per line, with the job, data host and event of the
calls an operator searches by, and job-controlled text escaped and bounded (runner.jsonlog)."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from runner.host.pipeline import execute_job
from runner.host.sandbox.fake import Script
from runner.jsonlog import MAX_FIELD, MAX_MESSAGE, JsonFormatter, log_fields
from tests.kit.worlds import ControlWorld, build_control_world


@pytest.fixture
def world(tmp_path) -> Iterator[ControlWorld]:
    w = build_control_world(tmp_path)
    yield w
    w.close()


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """What c2d's loggers write through ``JsonFormatter`` while the test runs."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("runner")
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def parsed(out: io.StringIO) -> list[dict[str, str]]:
    lines = out.getvalue().splitlines()
    assert lines
    return [json.loads(line) for line in lines]  # each line is one whole object


def test_each_line_of_a_job_run_is_json_and_names_the_job(world, json_lines):
    job = world.approved(Script(files={"metrics.json": b'{"acc": 0.5}'}))

    execute_job(world.ctx, job.id, "local@test:1", poll_s=0.05)

    lines = parsed(json_lines)
    for line in lines:
        assert {"time", "level", "logger", "message"} <= line.keys()
        assert line["time"].endswith("Z")
    events = {line["event"]: line for line in lines if "event" in line}
    assert {"job.claimed", "job.finished"} <= events.keys()
    for event in ("job.claimed", "job.finished"):
        assert events[event]["job_id"] == job.id
        assert events[event]["data_host"] == "local"
        assert events[event]["logger"] == "runner.host.pipeline"
        assert events[event]["level"] == "INFO"
        assert job.id in events[event]["message"]


def test_job_controlled_text_is_escaped_and_bounded(json_lines):
    log = logging.getLogger("runner.host.pipeline")
    reason = "\x1b[2J\u202eok\n" + "x" * (MAX_MESSAGE * 2)
    log.warning(
        "job %s failed: %s",
        "j1",
        reason,
        extra=log_fields(job_id="j1\x1b]0;title\x07" + "y" * 500, event="job.refused"),
    )
    try:
        raise ValueError("bad\x9b")
    except ValueError:
        log.exception("it broke")

    failed, broke = parsed(json_lines)
    assert failed["message"].startswith("job j1 failed: \\x1b[2J\\u202eok\nxxx")
    assert len(failed["message"]) < MAX_MESSAGE + 100
    assert "characters cut" in failed["message"]
    assert failed["job_id"].startswith("j1\\x1b]0;title\\x07yyy")
    assert len(failed["job_id"]) < MAX_FIELD + 100
    assert "data_host" not in failed
    assert broke["level"] == "ERROR"
    assert "ValueError: bad\\x9b" in broke["exception"]
    written = json_lines.getvalue()
    assert "\x1b" not in written
    assert "\u202e" not in written


def test_the_setting_picks_the_format_and_text_stays_the_default():
    script = (
        "import logging\n"
        "from runner.context import setup_logging\n"
        "from runner.settings import Settings\n"
        "setup_logging(Settings().log_format)\n"
        "logging.getLogger('runner.host.pipeline').info('job %s claimed', 'j1', "
        "extra={'job_id': 'j1', 'data_host': 'local', 'event': 'job.claimed'})\n"
    )

    def run(**env: str) -> str:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("C2D_")}
        done = subprocess.run(
            [sys.executable, "-c", script],
            env={**clean, **env},
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return done.stderr

    [line] = run(C2D_LOG_FORMAT="json").splitlines()
    assert json.loads(line) == {
        "time": json.loads(line)["time"],
        "level": "INFO",
        "logger": "runner.host.pipeline",
        "message": "job j1 claimed",
        "job_id": "j1",
        "data_host": "local",
        "event": "job.claimed",
    }
    assert run().rstrip().endswith(" INFO runner.host.pipeline: job j1 claimed")
