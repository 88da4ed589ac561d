"""Following a job: server-sent events parsed as the format says, the push followed to the
end, and polling taking over (and saying so) when the stream breaks or the server has none."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from runner.client.api import Client
from runner.client.follow import follow
from runner.client.http import parse_sse

JOB = "job-1"


def sse(*events: tuple[str, Any]) -> bytes:
    body = ": ping\n\n"  # a comment, as the server's keep-alive
    for name, data in events:
        body += f"event: {name}\ndata: {json.dumps(data)}\n\n"
    return body.encode()


def job(state: str) -> dict[str, Any]:
    return {"id": JOB, "state": state}


class Recorder:
    def __init__(self) -> None:
        self.states: list[str] = []
        self.text = ""
        self.notes: list[str] = []

    def job(self, job: dict[str, Any]) -> None:
        self.states.append(job["state"])

    def log(self, text: str) -> None:
        self.text += text

    def note(self, text: str) -> None:
        self.notes.append(text)


def client(handler: Any) -> Client:
    return Client("http://api.test", "tok", 5, transport=httpx.MockTransport(handler))


def test_parse_sse_joins_data_lines_and_skips_comments() -> None:
    lines = [": ping", "", "event: job", 'data: {"a":', "data: 1}", "", "data: x", ""]
    assert list(parse_sse(lines)) == [("job", '{"a":\n1}'), ("message", "x")]


def test_a_pushed_job_is_followed_to_its_end_with_its_log() -> None:
    stream = sse(
        ("job", job("approved")),
        ("job", job("running")),
        ("log", {"text": "tick 0\n", "next": 7}),
        ("job", job("succeeded")),
        ("end", {"state": "succeeded"}),
    )
    seen = Recorder()
    done = follow(client(lambda r: httpx.Response(200, content=stream)), JOB, seen, logs=True)
    assert done.pushed
    assert done.job["state"] == "succeeded"
    assert seen.states == ["approved", "running", "succeeded"]
    assert seen.text == "tick 0\n"
    assert done.log_offset == 7
    assert seen.notes == []


def test_a_stream_cut_before_the_end_falls_back_to_polling_and_says_so() -> None:
    polls = iter(["running", "running", "failed"])
    live = iter([("tick 1\n", "1", "14"), ("", "0", "14")])

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/events"):
            return httpx.Response(
                200, content=sse(("job", job("running")), ("log", {"text": "tick 0\n", "next": 7}))
            )
        if path.endswith("/logs"):
            assert request.url.params["offset"] in ("7", "14")
            text, is_live, nxt = next(live)
            return httpx.Response(
                200, text=text, headers={"X-C2D-Log-Live": is_live, "X-C2D-Log-Next": nxt}
            )
        return httpx.Response(200, json=job(next(polls)))

    seen = Recorder()
    done = follow(client(handler), JOB, seen, logs=True, sleep=lambda s: None)
    assert not done.pushed
    assert done.job["state"] == "failed"
    assert seen.states == ["running", "failed"]
    assert seen.text == "tick 0\ntick 1\n"
    assert any("the event stream broke" in n and "polling every 1 s" in n for n in seen.notes)


def test_a_server_without_events_is_polled() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            return httpx.Response(404, json={"detail": "Not Found"})
        return httpx.Response(200, json=job("cancelled"))

    seen = Recorder()
    done = follow(client(handler), JOB, seen, sleep=lambda s: None)
    assert done.job["state"] == "cancelled"
    assert "does not push job events" in seen.notes[0]


def test_a_job_the_reader_may_not_see_is_an_error_not_a_poll() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"error": {"kind": "not_found", "message": "no job"}})

    from runner.errors import ApiError

    with pytest.raises(ApiError, match="no job"):
        follow(client(handler), JOB, sleep=lambda s: None)


def test_a_polled_log_that_stays_on_its_host_until_the_end_comes_at_the_end() -> None:
    # A dataset without live logs: the running job's log route answers 409, said once; the
    # kept log comes once the job ended.
    polls = iter(["running", "running", "running", "succeeded"])
    held = {"error": {"kind": "conflict", "message": "its log stays on its data host"}}
    served: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/events"):
            return httpx.Response(404, json={"detail": "Not Found"})
        if path.endswith("/logs"):
            if served[-1] == "running":
                return httpx.Response(409, json=held)
            return httpx.Response(200, text="all of it\n", headers={"X-C2D-Log-Next": "10"})
        served.append(next(polls))
        return httpx.Response(200, json=job(served[-1]))

    seen = Recorder()
    done = follow(client(handler), JOB, seen, logs=True, rest=True, sleep=lambda s: None)
    assert done.job["state"] == "succeeded"
    assert seen.text == "all of it\n"
    held_notes = [n for n in seen.notes if "stays on its data host" in n]
    assert held_notes == ["no log shown yet: its log stays on its data host"]
    assert done.log_offset == 10


def _pending_end(asked: list[str]) -> Any:
    """A stream that ends with the log still on its data host, and the log route that has the
    control plane fetch it (recording each ask)."""
    stream = sse(
        ("job", job("running")),
        ("logs-hidden", {"reason": "nothing of it leaves its data host"}),
        ("job", job("succeeded")),
        ("logs-hidden", {"reason": "its log is on its data host", "pending": True, "next": 0}),
        ("end", {"state": "succeeded"}),
    )

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            return httpx.Response(200, content=stream)
        asked.append(request.url.params["offset"])
        return httpx.Response(200, text="all of it\n", headers={"X-C2D-Log-Next": "10"})

    return handler


def test_a_follower_of_the_whole_log_asks_for_it_once_the_job_ended() -> None:
    asked: list[str] = []
    seen = Recorder()
    done = follow(client(_pending_end(asked)), JOB, seen, logs=True, rest=True)
    assert asked == ["0"]
    assert seen.text == "all of it\n"
    assert not done.log_pending
    assert done.log_offset == 10
    assert not any("on its data host" in n for n in seen.notes)


def test_a_follower_of_the_state_is_not_held_up_by_a_log_on_its_host() -> None:
    # `--wait` shows the log's last lines as they come; it reports the end without asking
    # the data host for a log that was never live.
    asked: list[str] = []
    seen = Recorder()
    done = follow(client(_pending_end(asked)), JOB, seen, logs=True)
    assert asked == []
    assert done.log_pending
    assert seen.text == ""
    assert "no log shown: its log is on its data host" in seen.notes
