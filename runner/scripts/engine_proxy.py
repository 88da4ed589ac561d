"""A read-only window on the Docker engine, for the API container of docker-compose.yml.

The API asks the engine one thing: the ID of a job environment's image (when a job is submitted
and when environments are listed). The engine's socket is root on the host, so the compose file
mounts it into the worker alone, and the worker runs this proxy on a socket of its own that the
API may use. It passes ``GET``/``HEAD`` of ``/_ping``, ``/version`` and ``/images/NAME/json``
(with or without an API version prefix, no query, no dot segments, no escapes) and answers
everything else ``403``, so code running in the API can inspect images but cannot create, start,
change or read anything else through it. Only the request line reaches the engine: no client
header or body is forwarded. (So jobs that bring their own image, which the API builds or loads
at submission, are refused in a compose stack.)

    python3 engine_proxy.py serve --listen /run/c2d-engine/docker.sock
    python3 engine_proxy.py check --listen /run/c2d-engine/docker.sock   # healthcheck

Standard library only: it runs in the app image beside c2d, not as part of it.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import socket
import socketserver
import sys
from http.server import BaseHTTPRequestHandler
from pathlib import Path

ENGINE = "/var/run/docker.sock"
ALLOWED_METHODS = frozenset({"GET", "HEAD"})
# An image reference or ID: letters, digits and the separators of Docker references.
_PATH = re.compile(
    r"^(?:/v1\.[0-9]{1,3})?/(?:_ping|version|images/[A-Za-z0-9][A-Za-z0-9._:/@-]{0,511}/json)$"
)
MAX_BODY = 4 * 1024 * 1024
# What a refused caller reads: c2d's own image builds and loads (jobs with a Dockerfile or an
# image archive) happen in the API, so this is also what such a submission reports.
REFUSAL = (
    "c2d's engine proxy only lets the API inspect images: this docker-compose stack runs jobs on "
    "the host's environment images, and jobs that bring their own Dockerfile or image archive "
    "need an API with the engine (`c2d server` on the data host)"
)
ENGINE_TIMEOUT_S = 30.0
DRAIN_TIMEOUT_S = 60.0


def allowed(method: str, target: str) -> bool:
    """Whether the request ``method target`` may reach the engine (see the module docstring)."""
    if method not in ALLOWED_METHODS:
        return False
    if any(c in target for c in "?#%\\") or "//" in target or ".." in target:
        return False
    if "." in target.split("/"):
        return False
    return _PATH.match(target) is not None


class _EngineConnection(http.client.HTTPConnection):
    """HTTP over the engine's unix socket."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("docker", timeout=timeout)
        self._socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self._socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, listen: str, engine: str) -> None:
        self.engine = engine
        super().__init__(listen, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        self._relay()

    def do_HEAD(self) -> None:
        self._relay()

    def _refuse(self) -> None:
        self.log_message("refused %s %s", self.command, self.path[:200])
        # A client still sending a body (a build context, an image archive) would get a broken
        # pipe instead of the answer if the connection closed under it: read the body first.
        self._discard_body()
        self.close_connection = True
        self._answer(403, {"message": REFUSAL}, close=True)

    def _discard_body(self) -> None:
        """Read and drop the request body (by length or chunked), within DRAIN_TIMEOUT_S."""
        self.connection.settimeout(DRAIN_TIMEOUT_S)
        try:
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                while True:
                    size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                            pass  # trailers
                        return
                    self._skip(size + 2)  # the chunk and its CRLF
            else:
                self._skip(int(self.headers.get("Content-Length") or 0))
        except (ValueError, OSError):
            return  # a malformed or stalled body: the connection closes after the answer

    def _skip(self, count: int) -> None:
        while count > 0:
            data = self.rfile.read(min(count, 1024 * 1024))
            if not data:
                raise OSError("the body ended early")
            count -= len(data)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_CONNECT = do_TRACE = _refuse

    def _answer(self, status: int, doc: dict[str, str], *, close: bool = False) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _relay(self) -> None:
        if not allowed(self.command, self.path):
            self._refuse()
            return
        conn = _EngineConnection(self.server.engine, ENGINE_TIMEOUT_S)
        try:
            conn.request(self.command, self.path, headers={"Host": "docker"})
            reply = conn.getresponse()
            body = reply.read(MAX_BODY + 1)
        except OSError as exc:
            self._answer(502, {"message": f"the Docker engine does not answer: {exc}"})
            return
        finally:
            conn.close()
        if len(body) > MAX_BODY:
            self._answer(502, {"message": "the engine's answer is larger than the proxy passes"})
            return
        self.send_response(reply.status)
        for name in ("Content-Type", "Api-Version", "Ostype", "Docker-Experimental", "Server"):
            value = reply.getheader(name)
            if value:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        # The base class prints the client's address, which a unix socket does not have.
        sys.stderr.write("engine-proxy: " + (format % args) + "\n")

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Successful requests are not logged: the healthcheck pings every few seconds."""


def serve(listen: str, engine: str) -> None:
    """Serve the proxy on the unix socket ``listen`` (replacing a stale one) until killed."""
    path = Path(listen)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    old = os.umask(0o077)  # the socket is for root in the API container only
    try:
        server = _Server(listen, engine)
    finally:
        os.umask(old)
    sys.stderr.write(f"engine-proxy: serving image inspection of {engine} on {listen}\n")
    server.serve_forever()


def check(listen: str) -> int:
    """Healthcheck: 0 when the engine answers ``/_ping`` through the proxy at ``listen``."""
    conn = _EngineConnection(listen, 5.0)
    try:
        conn.request("GET", "/_ping")
        reply = conn.getresponse()
        ok = reply.status == 200 and reply.read() == b"OK"
    except OSError as exc:
        sys.stderr.write(f"engine-proxy: no answer on {listen}: {exc}\n")
        return 1
    finally:
        conn.close()
    return 0 if ok else 1


def main(argv: list[str]) -> int:
    """``serve`` or ``check``; see the module docstring."""
    parser = argparse.ArgumentParser(prog="engine_proxy.py")
    parser.add_argument("command", choices=["serve", "check"])
    parser.add_argument("--listen", required=True, help="unix socket to serve on")
    parser.add_argument("--engine", default=ENGINE, help="the Docker engine's socket")
    args = parser.parse_args(argv)
    if args.command == "check":
        return check(args.listen)
    serve(args.listen, args.engine)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
