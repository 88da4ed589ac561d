"""The HTTP client: routes, error mapping, and what happens when the server is not there."""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Callable

import httpx
import pytest

from runner.client import Client
from runner.errors import ApiError, IntegrityError, ServiceUnavailable

Handler = Callable[[httpx.Request], httpx.Response]


TOKEN = "tok"


def client_for(handler: Handler, token: str | None = TOKEN) -> Client:
    return Client("http://api.test", token, 5, transport=httpx.MockTransport(handler))


def error(status: int, kind: str, message: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"kind": kind, "message": message}})


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (422, "invalid"),
        (404, "not_found"),
        (403, "not_allowed"),
        (401, "unauthenticated"),
        (409, "conflict"),
        (413, "too_large"),
        (503, "unavailable"),
        (409, "failed"),
    ],
)
def test_error_bodies_keep_the_servers_kind_and_message(status: int, kind: str) -> None:
    with (
        client_for(lambda r: error(status, kind, "do this next")) as client,
        pytest.raises(ApiError) as caught,
    ):
        client.job("j1")
    assert (caught.value.kind, caught.value.message, caught.value.status) == (
        kind,
        "do this next",
        status,
    )


@pytest.mark.parametrize(
    ("status", "kind"),
    [(404, "not_found"), (401, "unauthenticated"), (500, "failed"), (502, "unavailable")],
)
def test_errors_without_the_contract_body_map_by_status(status: int, kind: str) -> None:
    with (
        client_for(lambda r: httpx.Response(status, text="upstream trouble")) as client,
        pytest.raises(ApiError) as caught,
    ):
        client.datasets()
    assert caught.value.kind == kind
    assert "upstream trouble" in caught.value.message


def test_a_success_that_is_not_json_is_an_error_naming_the_url() -> None:
    with (
        client_for(lambda r: httpx.Response(200, text="<html>proxy</html>")) as client,
        pytest.raises(ApiError, match=r"api\.test"),
    ):
        client.me()


def test_a_closed_port_is_unavailable_with_a_hint_to_start_the_server() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # The port is closed again now: nothing listens there.
    with (
        Client(f"http://127.0.0.1:{port}", "tok", 2) as client,
        pytest.raises(ServiceUnavailable) as caught,
    ):
        client.health()
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert "c2d server" in str(caught.value)
    assert caught.value.kind == "unavailable"


def test_a_timeout_is_unavailable() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("too slow", request=request)

    with (
        client_for(slow) as client,
        pytest.raises(ServiceUnavailable, match="did not answer in time"),
    ):
        client.jobs()


def test_token_query_and_multipart_upload_are_sent_as_the_contract_says() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/v1/jobs" and request.method == "GET":
            return httpx.Response(200, json=[])
        return httpx.Response(201, json={"id": "j1", "state": "pending"})

    with client_for(handler) as client:
        assert client.jobs("pending") == []
        client.submit({"name": "train", "command": ["python", "t.py"]}, b"TARBYTES")
    listing, upload = seen
    assert listing.headers["Authorization"] == "Bearer tok"
    assert listing.url.params["state"] == "pending"
    body = upload.read()
    assert upload.headers["Content-Type"].startswith("multipart/form-data")
    assert b'name="spec"' in body
    assert b'"command": ["python", "t.py"]' in body
    assert b'name="bundle"; filename="bundle.tar"' in body
    assert b"TARBYTES" in body
    assert b"application/x-tar" in body


def test_no_token_sends_no_authorization_header() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True, "version": "0", "origin": "o"})

    with client_for(handler, token=None) as client:
        client.health()
    assert "Authorization" not in seen[0].headers


def test_job_ids_are_quoted_into_one_path_segment() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        return httpx.Response(200, json={})

    with client_for(handler) as client:
        client.approve("../users", "ok")
    assert seen == ["/v1/jobs/..%2Fusers/approve"]


def test_logs_report_truncation_from_the_header() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="line\n", headers={"X-C2D-Log-Truncated": "1"})

    with client_for(handler) as client:
        assert client.logs("j1") == ("line\n", True)


def _paged(entries: list[bytes], shuffle: bool = False) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        start = int(request.url.params["start"])
        limit = int(request.url.params["limit"])
        rows = [
            {"index": i, "entry": base64.b64encode(entries[i]).decode()}
            for i in range(start, min(start + limit, len(entries)))
        ]
        if shuffle and rows:
            rows.reverse()
        return httpx.Response(200, json={"size": len(entries), "entries": rows})

    return handler


def test_ledger_entries_are_read_page_by_page_in_order() -> None:
    entries = [json.dumps({"seq": i}).encode() for i in range(25)]
    with client_for(_paged(entries)) as client:
        assert client.ledger_entries(page=10) == entries


def test_ledger_entries_out_of_order_are_refused() -> None:
    entries = [json.dumps({"seq": i}).encode() for i in range(5)]
    with (
        client_for(_paged(entries, shuffle=True)) as client,
        pytest.raises(IntegrityError, match="not in order"),
    ):
        client.ledger_entries(page=10)
