"""The web pages over real HTTP, for the unit tests: an app served by uvicorn in a thread, and
a person's browser session without a browser (``Visitor``: cookies, the CSRF token of the last
page, form posts). The end-to-end tests drive a real Chromium instead (``tests/e2e``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from tests.kit.procs import free_port, wait_for

_CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


@contextmanager
def served(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` on a free local port in a thread; yield its base URL; stop it."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for("the test server to start", lambda: server.started, 10.0)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


class Visitor:
    """One person's cookies on the pages at ``url``; ``sign_in`` exchanges their token."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, follow_redirects=False, timeout=30)
        self.csrf = ""

    def close(self) -> None:
        self.http.close()

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        """GET a page; remember the CSRF token of its forms."""
        response = self.http.get(path, **kwargs)
        found = _CSRF.search(response.text)
        if found:
            self.csrf = found.group(1)
        return response

    def sign_in(self, token: str) -> httpx.Response:
        """The sign-in form, filled in and sent as the page would."""
        page = self.http.get("/ui/sign-in")
        csrf = _CSRF.search(page.text)
        assert csrf, page.text
        return self.http.post(
            "/ui/sign-in", data={"csrf": csrf.group(1), "token": token, "next": ""}
        )

    def post(
        self, path: str, data: dict[str, str] | None = None, *, csrf: str | None = None, **kw: Any
    ) -> httpx.Response:
        """POST a form with the session's CSRF token (or ``csrf``; "" sends none)."""
        if not self.csrf:
            self.get("/ui/jobs")
        token = self.csrf if csrf is None else csrf
        fields = dict(data or {})
        if token:
            fields["csrf"] = token
        return self.http.post(path, data=fields, **kw)
