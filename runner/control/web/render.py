"""Pages from templates, with everything a job controls escaped twice over.

The Jinja2 environment autoescapes HTML (``<``, ``&``, quotes), and its ``finalize`` hook passes
every string a template prints through ``jobs.safe_text.escape`` first, as the CLI does: a
control, bidi or invisible character shows as ``\\x1b`` or ``\\u202e`` in the page, so code
cannot read in another order than Python reads it, and a name cannot hide what it is. Printed
values are one line each (their newlines shown as ``\\n``); the ``block`` and ``highlight``
filters keep the lines of logs, code and diffs, escaped the same way. Templates never decide
who may see what: every route has asked the service with the signed-in person first.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup
from markupsafe import escape as html_escape

from jobs import access
from jobs.safe_text import escape
from jobs.units import describe_size
from runner.control.web.highlight import highlighted
from runner.control.web.sessions import Viewer

TEMPLATES = Path(__file__).with_name("templates")


def _shown(value: Any) -> Any:
    """What ``{{ value }}`` prints: strings escaped onto one line, ``None`` as ``-``."""
    if isinstance(value, Markup):
        return value
    if value is None:
        return "-"
    if isinstance(value, str):
        return escape(value)
    return value


def block(text: str | None) -> Markup:
    """Text whose lines are kept (for ``<pre>``), escaped for the page and for people."""
    return html_escape(escape(text or "", multiline=True))


def size(value: int | None) -> str:
    """``5.1 MiB (5136908 bytes)``."""
    if value is None:
        return "-"
    return f"{describe_size(int(value))} ({int(value)} bytes)"


def age(when: float | None, now: float | None = None) -> str:
    """How long ago ``when`` (Unix seconds) was: ``40 s``, ``3 min``, ``5 h``, ``2 d``."""
    if when is None:
        return "-"
    seconds = max(0.0, (now if now is not None else time.time()) - when)
    for unit, length in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= length:
            return f"{int(seconds // length)} {unit}"
    return f"{int(seconds)} s"


def stamp(when: float | str | None) -> str:
    """A time as ``2024-05-01 12:00:03 UTC`` (Unix seconds or an RFC 3339 string)."""
    if when is None:
        return "-"
    if isinstance(when, str):
        return when.replace("T", " ").split(".")[0].removesuffix("Z") + " UTC"
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def as_json(value: Any) -> str:
    """A value as people read JSON: sorted keys, two spaces (``block`` it to keep lines)."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        finalize=_shown,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        block=block, highlight=highlighted, size=size, age=age, stamp=stamp, as_json=as_json
    )
    return env


ENV = _environment()


def render(template: str, **context: Any) -> str:
    """The template filled in (for tests and fragments)."""
    return ENV.get_template(template).render(**context)


def page(
    request: Request,
    template: str,
    who: Viewer | None,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """An HTML response of ``template`` for ``who`` (None: nobody signed in)."""
    html = render(
        template,
        viewer=who,
        user=who.user if who else None,
        # Whether to link the queue: a convenience only; the queue asks the service itself.
        reviewer=bool(who and access.may_register(who.user)),
        csrf=who.csrf if who else "",
        path=request.url.path,
        **context,
    )
    return HTMLResponse(html, status_code=status, headers=headers)
