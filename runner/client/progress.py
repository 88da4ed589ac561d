"""A job's progress shown in a notebook: one line in the cell, updated in place.

``default_progress()`` gives it inside a Jupyter kernel (IPython's ``display`` with a
``display_id``, plain text, so nothing the job wrote is rendered as HTML) and None elsewhere:
a script gets nothing unless it hands ``JobHandle.wait`` a watcher of its own.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from jobs.safe_text import escape

LOG_LINES = 3


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (IPython with a kernel attached)."""
    shell = sys.modules.get("IPython")
    get = getattr(shell, "get_ipython", None)
    ipython = get() if callable(get) else None
    return ipython is not None and getattr(ipython, "kernel", None) is not None


class NotebookProgress:
    """A ``runner.client.follow.Watcher`` updating one output line of the cell."""

    def __init__(self) -> None:
        from IPython.display import display

        self.started = time.monotonic()
        self.state = "?"
        self.job_id = "?"
        self.lines: list[str] = []
        self.notes: list[str] = []
        self._partial = ""
        self._handle = display(self._text(), display_id=True)

    def _text(self) -> Any:
        from IPython.display import Pretty

        head = f"job {self.job_id}: {self.state} ({time.monotonic() - self.started:.0f} s)"
        body = [*(f"  | {escape(line)}" for line in self.lines[-LOG_LINES:]), *self.notes]
        return Pretty("\n".join([head, *body]))

    def _show(self) -> None:
        if self._handle is not None:
            self._handle.update(self._text())

    def job(self, job: dict[str, Any]) -> None:
        self.job_id, self.state = job["id"], job["state"]
        self._show()

    def log(self, text: str) -> None:
        parts = (self._partial + text).split("\n")
        self._partial = parts.pop()
        self.lines = [*self.lines, *parts][-LOG_LINES:]
        self._show()

    def note(self, text: str) -> None:
        self.notes.append(escape(text))
        self._show()


def default_progress(*, force: bool = False) -> NotebookProgress | None:
    """The notebook's progress line inside a kernel (or when ``force``d and IPython is
    installed), else None."""
    if in_notebook() or (force and "IPython" in sys.modules):
        return NotebookProgress()
    return None
