"""A recorder: an HTTP server on every address of this host that writes down what it is asked.

Attack tests plant it and try to make c2d reach it (a build, a job, a data host); its silence is
the proof. Part of the one test kit (``tests.kit``).
"""

from __future__ import annotations

import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def interface_addresses() -> list[tuple[str, str]]:
    """``(device, address)`` of the host's non-loopback IPv4 addresses, Docker's bridge too."""
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "scope", "global"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [(line.split()[1], line.split()[3].split("/")[0]) for line in out.splitlines()]


class Recorder:
    """An HTTP server on 0.0.0.0 that writes down every request it gets."""

    def __init__(self) -> None:
        seen: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append(self.path)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"c2d-host-secret\n")

            def log_message(self, *_: Any) -> None:
                pass

        self.seen = seen
        self.server = ThreadingHTTPServer(("0.0.0.0", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def urls(self) -> list[str]:
        """The recorder on loopback, the Docker bridge and every other host address."""
        hosts = ["127.0.0.1", *(address for _, address in interface_addresses())]
        return [f"http://{h}:{self.port}/secret.txt" for h in hosts]

    def bridge_url(self) -> str:
        """The recorder where a container on Docker's default bridge reaches the host."""
        bridge = next(a for device, a in interface_addresses() if device == "docker0")
        return f"http://{bridge}:{self.port}/secret.txt"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
