"""A researcher's loop, through real processes: the end of a job pushed at once, a running
job's output read while it runs (only on a dataset whose researcher may read logs), polling
when the push breaks; on any other dataset nothing of a running job's log leaves its data
host."""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
import redis

from runner.transport import key_prefix
from tests.kit.data import make_dataset, script_job
from tests.kit.proxy import CuttingProxy

if TYPE_CHECKING:
    from tests.kit.installation import Installation

pytestmark = [pytest.mark.docker, pytest.mark.redis, pytest.mark.slow]

TALKER = """\
import json, pathlib, time
for n in range(3):
    print(f"tick {n}", flush=True)
    time.sleep(1)
time.sleep(float(json.loads(pathlib.Path("/job/params.json").read_text())["hold"]))
pathlib.Path("/outputs/metrics.json").write_text(json.dumps({"ticks": 3}))
print("done", flush=True)
"""


class Lines:
    """A process's lines from one of its pipes, each with the wall time it arrived."""

    def __init__(self, pipe: object) -> None:
        self.got: list[tuple[float, str]] = []
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe: object) -> None:
        for line in pipe:  # type: ignore[attr-defined]
            self.got.append((time.time(), line.rstrip("\n")))

    def first(self, text: str) -> float | None:
        return next((t for t, line in self.got if text in line), None)

    def text(self) -> str:
        return "\n".join(line for _, line in self.got)

    def join(self) -> None:
        self._thread.join(10)


def _people(
    stack: Installation, tmp_path: Path, *policy: str, release: str = "--release-on-success"
) -> tuple[str, str, str]:
    _, owner = stack.add_user("owner", "olga")
    _, researcher = stack.add_user("researcher", "rita")
    dataset = f"ds-{uuid.uuid4().hex[:6]}"
    data = make_dataset(tmp_path / "data")
    stack.json("dataset", "add", dataset, str(data), release, *policy, token=owner)
    return owner, researcher, dataset


def _finished_at(stack: Installation, job_id: str) -> float:
    entry = next(e for e in stack.entries(job_id) if e["type"] == "job.finished")
    return datetime.fromisoformat(entry["time"].replace("Z", "+00:00")).timestamp()


def test_submit_wait_sees_the_end_within_100_ms_of_job_finished(
    c2d_stack: Installation, tmp_path: Path
) -> None:
    stack = c2d_stack
    owner, researcher, dataset = _people(stack, tmp_path)
    job_dir = script_job(tmp_path / "job", "print('hello')\n", dataset=dataset, cpus=0.5)
    first = stack.json("submit", str(job_dir), token=researcher)
    stack.json("approve", first["id"], token=owner)
    stack.json("trust", first["id"], token=owner)  # the same code and params: approved by policy
    stack.wait_ended(first["id"])

    proc = stack.popen("submit", str(job_dir), "--wait", token=researcher)
    err = Lines(proc.stderr)
    out = proc.stdout.read()  # type: ignore[union-attr]
    proc.wait(300)
    err.join()
    proc.communicate()  # closes the pipes
    assert proc.returncode == 0, err.text() + stack.logs()
    job_id = out.strip()
    assert "approved" in err.text()  # by policy: nobody needed to act
    assert "event stream broke" not in err.text()
    seen = err.first(f"job {job_id} released: exited with code 0")  # released on success
    assert seen is not None, err.text()
    lag = seen - _finished_at(stack, job_id)
    assert 0 <= lag <= 0.1, f"the CLI saw the end {lag * 1000:.0f} ms after job.finished"


def test_logs_follow_shows_a_running_jobs_output_live_where_the_researcher_may_read_it(
    c2d_stack: Installation, tmp_path: Path
) -> None:
    stack = c2d_stack
    # The researcher may read logs at any time, so the host publishes the output as it comes.
    owner, researcher, dataset = _people(
        stack, tmp_path, "--logs-visible", "researcher", release="--review-outputs"
    )
    job_dir = script_job(tmp_path / "job", TALKER, dataset=dataset, params={"hold": 2}, cpus=0.5)
    job = stack.json("submit", str(job_dir), token=researcher)
    stack.json("approve", job["id"], token=owner)

    following = stack.popen("logs", job["id"], "-f", token=researcher)
    watching = stack.popen("status", job["id"], "--wait", token=owner)
    out = Lines(following.stdout)
    status_err = Lines(watching.stderr)
    states: dict[str, str] = {}

    def note_state() -> None:
        while following.poll() is None:
            for _, line in list(out.got):
                states.setdefault(line, stack.state(job["id"]))
            time.sleep(0.05)

    watcher = threading.Thread(target=note_state, daemon=True)
    watcher.start()
    assert following.wait(300) == 0, stack.logs()
    assert watching.wait(300) == 0, status_err.text()
    watcher.join(5)
    out.join()
    status_err.join()
    for proc in (following, watching):
        proc.communicate()

    lines = [line for _, line in out.got]
    assert lines[:3] == ["tick 0", "tick 1", "tick 2"], lines
    assert "done" in lines
    # The first lines arrived while the job still ran, not when its log was kept.
    assert states.get("tick 0") == "running", states
    assert out.first("tick 0") < _finished_at(stack, job["id"]) - 1  # type: ignore[operator]
    # status --wait showed the last lines as they came.
    assert "  | tick 1" in status_err.text()


def test_no_byte_of_a_running_jobs_log_leaves_its_host_where_the_researcher_may_not_read_it(
    c2d_stack: Installation, tmp_path: Path
) -> None:
    stack = c2d_stack
    # The default policy keeps logs to the owner; outputs wait for review, so the researcher
    # may read no log at all here.
    owner, researcher, dataset = _people(stack, tmp_path, release="--review-outputs")
    job_dir = script_job(tmp_path / "job", TALKER, dataset=dataset, params={"hold": 2}, cpus=0.5)
    job_id = stack.json("submit", str(job_dir), token=researcher)["id"]
    stack.json("approve", job_id, token=owner)

    hidden = stack.popen("logs", job_id, "-f", "--json", token=researcher)
    owners = stack.popen("logs", job_id, "-f", token=owner)
    owner_out = Lines(owners.stdout)
    pushed: list[tuple[str, str]] = []
    streamed = threading.Thread(
        target=_read_events, args=(stack.url, researcher, job_id, pushed), daemon=True
    )
    streamed.start()

    broker = redis.Redis.from_url(stack.settings.redis_url)
    pattern = f"{key_prefix(stack.settings)}log:{job_id}:*"
    polled: list[tuple[int, str]] = []
    keys: list[bytes] = []
    wait_for_state = time.monotonic() + 120
    while stack.state(job_id) != "running" and time.monotonic() < wait_for_state:
        time.sleep(0.05)
    assert stack.state(job_id) == "running", stack.logs()
    with httpx.Client(base_url=stack.url, timeout=60) as http:
        while True:
            answers = [
                http.get(f"/v1/jobs/{job_id}/logs", headers={"Authorization": f"Bearer {token}"})
                for token in (researcher, owner)
            ]
            keys += broker.keys(pattern)
            if stack.state(job_id) != "running":
                break  # an answer may be the ended job's kept log, which the owner may read
            for answer in answers:
                polled.append((answer.status_code, answer.text))
            time.sleep(0.2)
    stack.wait_ended(job_id)
    keys += broker.keys(pattern)
    broker.close()
    hidden_out, hidden_err = hidden.communicate(timeout=300)
    assert owners.wait(300) == 0, stack.logs()
    owner_out.join()
    owners.communicate()
    streamed.join(60)

    # Nothing of the log went to Redis, where a host publishes a running job's log.
    assert keys == [], keys
    # Over HTTP while it ran: the researcher refused, the owner told to wait for the end.
    assert polled, "the job was never seen running"
    assert {code for code, _ in polled[0::2]} == {403}, polled  # the researcher
    assert {code for code, _ in polled[1::2]} == {409}, polled  # the owner
    assert "tick" not in "".join(text for _, text in polled)
    # The pushed stream carried the job's states to the researcher, and no log.
    assert ("end", "succeeded") in [(n, d.get("state")) for n, d in _parsed(pushed)], pushed
    assert [n for n, _ in pushed if n == "log"] == []
    assert "tick" not in "".join(d for _, d in pushed)
    # `c2d logs -f`: the researcher is told and shown nothing.
    assert hidden.returncode == 0, hidden_err
    assert "tick" not in hidden_out + hidden_err
    assert "stay with the owner" in hidden_err
    # The owner gets the whole log, once the job ended (its host uploads it when asked).
    lines = [line for _, line in owner_out.got]
    assert lines[:3] == ["tick 0", "tick 1", "tick 2"], lines
    assert out_first(owner_out, "tick 0") >= _finished_at(stack, job_id)


def out_first(lines: Lines, text: str) -> float:
    seen = lines.first(text)
    assert seen is not None, lines.text()
    return seen


def _read_events(url: str, token: str, job_id: str, into: list[tuple[str, str]]) -> None:
    """GET /v1/jobs/ID/events?logs=true as ``token`` until the server ends it: each event's
    name and raw data."""
    from runner.client.http import parse_sse

    headers = {"Authorization": f"Bearer {token}"}
    timeout = httpx.Timeout(10, read=60)
    with (
        httpx.Client(base_url=url, timeout=timeout) as http,
        http.stream(
            "GET", f"/v1/jobs/{job_id}/events", params={"logs": "true"}, headers=headers
        ) as response,
    ):
        assert response.status_code == 200
        into.extend(parse_sse(response.iter_lines()))


def _parsed(events: list[tuple[str, str]]) -> list[tuple[str, dict[str, object]]]:
    import json

    return [(name, json.loads(data)) for name, data in events]


def test_a_dropped_event_stream_falls_back_to_polling_and_says_so(
    c2d_stack: Installation, tmp_path: Path
) -> None:
    stack = c2d_stack
    owner, researcher, dataset = _people(stack, tmp_path, "--logs-visible", "researcher")
    job_dir = script_job(tmp_path / "job", TALKER, dataset=dataset, params={"hold": 0}, cpus=0.5)
    job = stack.json("submit", str(job_dir), token=researcher)
    port = int(stack.url.rsplit(":", 1)[1])
    with CuttingProxy(port) as proxy:
        waiting = subprocess.Popen(
            [*stack_cmd(stack), "--url", proxy.url, "logs", job["id"], "-f"],
            env=stack.command_env(owner),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        time.sleep(1)  # it follows a pending job through the proxy
        stack.json("approve", job["id"], token=owner)
        out, err = waiting.communicate(timeout=300)
        assert proxy.cut >= 1
    assert waiting.returncode == 0, err + stack.logs()
    assert "the event stream broke" in err
    assert "following by polling every 1 s" in err
    assert "tick 0" in out, out  # the live log, polled
    assert "done" in out, out
    assert stack.state(job["id"]) == "released"


def stack_cmd(stack: Installation) -> list[str]:
    from tests.kit.installation import C2D

    return [str(C2D)]
