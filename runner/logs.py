"""Logging of c2d's long-running processes (the API server, a data host's worker)."""

from __future__ import annotations

import logging

from jobs.safe_text import escape


class SafeFormatter(logging.Formatter):
    """Log lines quote job-controlled text (reasons, names, errors); like the CLI, they show
    its control and invisible characters escaped, so a job cannot redraw the operator's
    terminal under `c2d up`. Line breaks stay (tracebacks)."""

    def format(self, record: logging.LogRecord) -> str:
        return escape(super().format(record), multiline=True)


def setup_logging() -> None:
    """Log INFO and above to stderr through ``SafeFormatter``."""
    handler = logging.StreamHandler()
    handler.setFormatter(SafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
