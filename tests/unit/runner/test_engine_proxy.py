"""The compose stack's engine proxy passes image inspection and nothing else.

A fake engine (an HTTP server on a unix socket) records what reaches it; the proxy runs in a
thread in front of it. The compose e2e test repeats the refusal against the real engine.
"""

from __future__ import annotations

import http.client
import json
import socket
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from runner.scripts import engine_proxy


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=5)
        self._path = str(path)

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class _FakeEngine(BaseHTTPRequestHandler):
    """Answers every request 200 (its path echoed, or OK to a ping) and records it."""

    protocol_version = "HTTP/1.1"
    seen: list[dict[str, Any]]

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        record = {
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body.decode(),
        }
        self.seen.append(record)
        if self.path.endswith("/_ping"):
            reply = b"OK"  # what the engine answers
        else:
            reply = json.dumps({"Id": "sha256:" + "a" * 64, "echo": record["path"]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Api-Version", "1.41")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply)

    do_GET = do_HEAD = do_POST = do_DELETE = do_PUT = _any

    def log_message(self, format: str, *args: object) -> None:
        pass


class _UnixServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[tuple[Path, list[dict[str, Any]]]]:
    """(proxy socket, requests the fake engine received)."""
    seen: list[dict[str, Any]] = []
    handler = type("Engine", (_FakeEngine,), {"seen": seen})
    engine_path = tmp_path / "engine.sock"
    engine = _UnixServer(str(engine_path), handler)
    listen = tmp_path / "proxy.sock"
    proxy_server = engine_proxy._Server(str(listen), str(engine_path))
    threads = [
        threading.Thread(target=s.serve_forever, daemon=True) for s in (engine, proxy_server)
    ]
    for t in threads:
        t.start()
    try:
        yield listen, seen
    finally:
        for s in (proxy_server, engine):
            s.shutdown()
            s.server_close()


def _request(
    sock: Path,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    conn = _UnixConnection(sock)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        reply = conn.getresponse()
        return reply.status, reply.read()
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/_ping"),
        ("HEAD", "/_ping"),
        ("GET", "/version"),
        ("GET", "/v1.41/version"),
        ("GET", "/v1.41/images/c2d/python-ml:latest/json"),
        ("GET", "/v1.41/images/sha256:" + "ab" * 32 + "/json"),
        ("GET", "/images/localhost:5000/team/env@sha256:" + "cd" * 32 + "/json"),
    ],
)
def test_allowed_requests(method: str, path: str) -> None:
    assert engine_proxy.allowed(method, path)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1.41/containers/create"),
        ("POST", "/v1.41/images/c2d/python-ml:latest/json"),
        ("DELETE", "/v1.41/images/c2d/python-ml:latest"),
        ("GET", "/v1.41/containers/json"),
        ("GET", "/v1.41/images/json"),
        ("GET", "/v1.41/images/c2d/python-ml:latest/get"),
        ("GET", "/v1.41/info"),
        ("GET", "/v1.41/images/../containers/x/json"),
        ("GET", "/v1.41/images/a/../../containers/x/json"),
        ("GET", "/v1.41/images/a/./json"),
        ("GET", "/v1.41/images/%2e%2e/containers/json"),
        ("GET", "/v1.41/images/x/json?all=1"),
        ("GET", "//images/x/json"),
        ("GET", "/v1.41/_ping/extra"),
        ("GET", "http://docker/v1.41/_ping"),
    ],
)
def test_refused_requests(method: str, path: str) -> None:
    assert not engine_proxy.allowed(method, path)


def test_inspection_passes_without_the_clients_headers(
    proxy: tuple[Path, list[dict[str, Any]]],
) -> None:
    sock, seen = proxy
    status, body = _request(
        sock,
        "GET",
        "/v1.41/images/c2d/python-ml:latest/json",
        headers={"X-Registry-Auth": "secret", "Authorization": "Bearer t"},
    )
    assert status == 200
    assert json.loads(body)["echo"] == "/v1.41/images/c2d/python-ml:latest/json"
    assert [(r["method"], r["path"]) for r in seen] == [
        ("GET", "/v1.41/images/c2d/python-ml:latest/json")
    ]
    assert "x-registry-auth" not in seen[0]["headers"]
    assert "authorization" not in seen[0]["headers"]
    assert engine_proxy.check(str(sock)) == 0


def test_anything_else_is_refused_before_the_engine(
    proxy: tuple[Path, list[dict[str, Any]]],
) -> None:
    sock, seen = proxy
    status, body = _request(
        sock,
        "POST",
        "/v1.41/containers/create",
        body=json.dumps({"Image": "x", "HostConfig": {"Privileged": True}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert status == 403
    assert "only lets the API inspect images" in json.loads(body)["message"]
    status, _ = _request(sock, "GET", "/v1.41/containers/json")
    assert status == 403
    assert seen == []


@pytest.mark.parametrize("chunked", [False, True])
def test_a_large_refused_upload_gets_the_answer_not_a_broken_pipe(
    proxy: tuple[Path, list[dict[str, Any]]], chunked: bool
) -> None:
    # What `docker build` or `docker load` would send from the API: megabytes of body.
    sock, seen = proxy
    data = b"x" * (8 * 1024 * 1024)
    conn = _UnixConnection(sock)
    try:
        if chunked:
            pieces = (data[i : i + 65536] for i in range(0, len(data), 65536))
            conn.request("POST", "/v1.41/build", body=pieces, encode_chunked=True)
        else:
            conn.request("POST", "/v1.41/images/load", body=data)
        reply = conn.getresponse()
        assert reply.status == 403
        assert "bring their own Dockerfile" in json.loads(reply.read())["message"]
    finally:
        conn.close()
    assert seen == []


def test_no_engine_is_a_failed_check(tmp_path: Path) -> None:
    listen = tmp_path / "proxy.sock"
    server = engine_proxy._Server(str(listen), str(tmp_path / "no-engine.sock"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        status, body = _request(listen, "GET", "/_ping")
        assert status == 502
        assert "does not answer" in json.loads(body)["message"]
        assert engine_proxy.check(str(listen)) == 1
    finally:
        server.shutdown()
        server.server_close()
    assert engine_proxy.check(str(tmp_path / "nothing-here.sock")) == 1
