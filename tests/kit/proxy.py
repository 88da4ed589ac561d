"""A TCP proxy in front of the API that cuts event streams: the network failure a client
following a job must survive (a proxy's idle timeout, a load balancer's restart).

``CuttingProxy(target_port)`` forwards every connection to ``127.0.0.1:target_port`` byte for
byte; a connection whose request asks for a job's event stream (``/events``) is closed once
``cut_after`` bytes of the answer went through (the headers and the first event), the way a
dropped stream looks to the client. Everything else passes untouched, so the client can poll.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType

from tests.kit.procs import free_port


class CuttingProxy:
    """A proxy on a free local port; a context manager that stops it."""

    def __init__(self, target_port: int, *, cut_after: int = 400) -> None:
        self.target_port = target_port
        self.cut_after = cut_after
        self.port = free_port()
        self.cut = 0  # event streams cut so far
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._server.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> CuttingProxy:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(5)
        self._server.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with contextlib.ExitStack() as stack:
            stack.enter_context(client)
            upstream = stack.enter_context(
                socket.create_connection(("127.0.0.1", self.target_port))
            )
            request = client.recv(65536)
            cutting = b"/events" in request.split(b"\r\n", 1)[0]
            upstream.sendall(request)
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
            sent = 0
            while True:
                data = upstream.recv(65536)
                if not data:
                    return
                if cutting and sent + len(data) >= self.cut_after:
                    client.sendall(data[: max(self.cut_after - sent, 0)])
                    self.cut += 1
                    client.shutdown(socket.SHUT_RDWR)
                    return
                client.sendall(data)
                sent += len(data)

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
