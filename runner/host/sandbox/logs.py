"""A job's log: stdout and stderr kept up to a byte limit, with the cut marked honestly.

``LogBuffer`` keeps the first half of the limit (how the job started) and the last half (how it
ended, usually the traceback) and counts every byte in between it dropped, so the marker it
writes says exactly how much is missing.

``LogTap`` feeds a LogBuffer from a container's attach stream in a background thread. It is
attached before the container starts, so it sees every byte the engine received. What the
engine never received it cannot count: under gVisor (runsc) a job that writes faster than the
engine reads can lose output inside the sandbox, and then the log is short without a marker.

On disk, Docker's own copy is capped separately by the log driver (see ``hardening``); it is
read back only when no tap saw the job from its start (a restarted worker adopting a running
container), and then the log says it may be incomplete.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable
from typing import Protocol

RESTART_NOTE = (
    "[c2d: this log was read back from Docker's capped copy because the worker restarted "
    "while the job ran; earlier output may be missing]\n"
)


class LogBuffer:
    """Keeps the head and the tail of a byte stream within ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        self.head_cap = limit // 2
        self.tail_cap = limit - self.head_cap
        self._head = bytearray()
        self._tail = bytearray()
        self.total = 0

    def feed(self, chunk: bytes) -> None:
        """Add the next bytes of the stream."""
        self.total += len(chunk)
        room = self.head_cap - len(self._head)
        if room > 0:
            self._head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self._tail += chunk
            # Trim only when twice the cap, so each byte is moved at most once on average.
            if len(self._tail) > 2 * self.tail_cap:
                del self._tail[: len(self._tail) - self.tail_cap]

    def render(self) -> tuple[bytes, bool]:
        """The kept bytes, with a marker line where bytes were dropped; and whether any were."""
        tail = bytes(self._tail[-self.tail_cap :]) if self.tail_cap else b""
        dropped = self.total - len(self._head) - len(tail)
        if dropped <= 0:
            return bytes(self._head) + tail, False
        marker = (
            f"\n[c2d: log truncated: {dropped} bytes dropped here; kept the first "
            f"{len(self._head)} and the last {len(tail)} of {self.total} bytes]\n"
        ).encode()
        return bytes(self._head) + marker + tail, True


def cap_tail(data: bytes, limit: int, note: str = "") -> tuple[bytes, bool]:
    """Keep the last ``limit`` bytes of ``data`` (a copy read back afterwards), marking a cut."""
    prefix = note.encode()
    if len(data) <= limit:
        return prefix + data, False
    dropped = len(data) - limit
    marker = f"[c2d: log truncated: {dropped} earlier bytes dropped]\n".encode()
    return prefix + marker + data[-limit:], True


class LogSink(Protocol):
    """Where a tap also sends each chunk as it reads it (``runner.livelog.LiveLogWriter``)."""

    def feed(self, chunk: bytes) -> None: ...

    def close(self) -> None: ...


class LogTap:
    """Reads an output stream into a LogBuffer on a daemon thread, and into ``sink`` (the
    live log) as it goes; the sink is closed when the stream ends."""

    def __init__(
        self, stream: Iterable[bytes], limit: int, name: str, sink: LogSink | None = None
    ) -> None:
        self.buffer = LogBuffer(limit)
        self.error: BaseException | None = None
        self.sink = sink
        self._stream = stream
        self._thread = threading.Thread(target=self._run, name=f"log-{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for chunk in self._stream:
                self.buffer.feed(chunk)
                if self.sink is not None:
                    self.sink.feed(chunk)
        except Exception as exc:  # a broken stream means an incomplete log, not a crash
            self.error = exc
        finally:
            self.close()
            if self.sink is not None:
                self.sink.close()  # everything read is live before the job is collected

    def result(self, timeout: float) -> tuple[bytes, bool] | None:
        """The log once the stream ended (the container exited); None if unusable in time."""
        self._thread.join(timeout)
        if self._thread.is_alive() or self.error is not None:
            return None
        return self.buffer.render()

    def close(self) -> None:
        """Stop reading (closing the stream ends the thread)."""
        # docker-py's stream closes its socket, but the HTTP response holding the socket's
        # file object must be closed too, or the socket lingers until garbage collection.
        response = getattr(self._stream, "_response", None)
        for closer in (getattr(self._stream, "close", None), getattr(response, "close", None)):
            if closer is not None:
                with contextlib.suppress(Exception):  # closing twice is harmless
                    closer()
