"""Log lines as JSON (``C2D_LOG_FORMAT=json``): one object per line, for a log collector.

Each line holds ``time`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger`` and
``message``; where the call knows them, ``job_id``, ``data_host`` and ``event`` (passed with
``extra=log_fields(...)`` at the calls an operator searches by: a job claimed, finished,
refused, sent again, failed by the control plane, a misrouted message); and ``exception`` with
a traceback. Text a job controls reaches these lines (reasons, names, ids off a queue), so as
in the text format every control, bidi and invisible character is escaped and each value is
bounded: a line cannot redraw the terminal of an operator who reads it with ``jq -r``, nor
grow without end.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from jobs.safe_text import escape

FIELDS = ("job_id", "data_host", "event")
"""The ``extra=`` keys a line carries when a call passes them."""
MAX_MESSAGE = 16_384
MAX_FIELD = 200


def log_fields(
    *, job_id: str | None = None, data_host: str | None = None, event: str | None = None
) -> dict[str, str]:
    """The ``extra=`` of a log call about a job (the text format ignores them)."""
    given = {"job_id": job_id, "data_host": data_host, "event": event}
    return {k: v for k, v in given.items() if v is not None}


def _bounded(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f" [c2d: {len(text) - limit} characters cut]"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, its job-controlled text escaped and bounded."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC)
        line: dict[str, str] = {
            "time": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": _bounded(escape(record.getMessage(), multiline=True), MAX_MESSAGE),
        }
        for key in FIELDS:
            value = record.__dict__.get(key)
            if value is not None:
                line[key] = _bounded(escape(str(value)), MAX_FIELD)
        if record.exc_info:
            trace = self.formatException(record.exc_info)
            line["exception"] = _bounded(escape(trace, multiline=True), MAX_MESSAGE)
        return json.dumps(line, ensure_ascii=False)
