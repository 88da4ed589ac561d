"""The build's log as the researcher and the owner see it, and what the engine's stream says.

``BuildLog`` keeps the head and the tail of what the build printed within a byte cap (the head
shows the steps, the tail shows why it failed), with a ``[c2d: ...]`` line where bytes were
dropped. ``StreamFacts`` follows the classic builder's JSON stream: the container of the step now
running (so a watcher can kill it), the images the steps made (so a failed build can be cleaned
up), the final image ID and the error, if any. ``network_trouble`` recognizes the messages tools
print when they find no network, so a failed step is explained as what it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_RUNNING_RE = re.compile(r"^ ---> Running in ([0-9a-f]{12,64})\s*$", re.M)
_IMAGE_RE = re.compile(r"^ ---> ([0-9a-f]{12,64})\s*$", re.M)
_NETWORK_SIGNS = (
    "temporary failure in name resolution",
    "temporary failure resolving",
    "name or service not known",
    "could not resolve host",
    "unable to resolve host",
    "network is unreachable",
    "no route to host",
    "failed to establish a new connection",
    "newconnectionerror",
    "could not fetch url",
    "no address associated with hostname",
    "(from versions: none)",  # pip, when no index answers (or wheels/ lacks the package)
)


class BuildLog:
    """Text kept within ``max_bytes``: the first quarter and the latest three quarters."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._head = bytearray()
        self._tail = bytearray()
        self.dropped = 0

    def write(self, text: str) -> None:
        """Add ``text`` (terminal colour codes removed)."""
        data = _ANSI_RE.sub("", text).encode("utf-8", "replace")
        room = self.max_bytes // 4 - len(self._head)
        if room > 0 and not self._tail and not self.dropped:
            self._head += data[:room]
            data = data[room:]
        self._tail += data
        keep = self.max_bytes - len(self._head)
        if len(self._tail) > keep:
            cut = len(self._tail) - keep
            self.dropped += cut
            del self._tail[:cut]

    def text(self) -> str:
        """The log, with a note where bytes were dropped."""
        middle = f"\n[c2d: {self.dropped} bytes of the build log dropped]\n" if self.dropped else ""
        return (bytes(self._head).decode("utf-8", "replace") + middle) + bytes(self._tail).decode(
            "utf-8", "replace"
        )

    def tail_lines(self, n: int) -> str:
        """The last ``n`` non-empty lines (for error messages)."""
        lines = [ln for ln in self.text().splitlines() if ln.strip()]
        return "\n".join(lines[-n:])


def network_trouble(text: str) -> bool:
    """Whether ``text`` shows a tool failing to reach the network or a package index."""
    lowered = text.lower()
    return any(sign in lowered for sign in _NETWORK_SIGNS)


@dataclass
class StreamFacts:
    """What the engine's build stream has said so far."""

    running: str | None = None
    made: list[str] = field(default_factory=list)
    image_id: str | None = None
    error: str | None = None
    step: str = ""

    def feed(self, chunk: dict[str, Any], log: BuildLog) -> None:
        """Take one decoded chunk of the stream into the facts and the log."""
        if "error" in chunk or "errorDetail" in chunk:
            detail = chunk.get("errorDetail") or {}
            message = chunk.get("error") or detail.get("message") or "unknown build error"
            self.error = str(message).strip()
            log.write(f"{self.error}\n")
            return
        aux = chunk.get("aux")
        if isinstance(aux, dict) and isinstance(aux.get("ID"), str):
            self.image_id = aux["ID"]
        text = chunk.get("stream")
        if not isinstance(text, str):
            return
        log.write(text)
        if text.startswith("Step "):
            self.step = text.strip()
            self.running = None
        for match in _RUNNING_RE.finditer(text):
            self.running = match.group(1)
        for match in _IMAGE_RE.finditer(text):
            self.made.append(match.group(1))
            self.running = None
