"""The web pages: the data owner's review queue and a researcher's jobs, in a browser.

Served by the API process itself under ``/ui`` (``install``), from server-side templates
(``render``) and plain HTML forms, with one stylesheet and two small scripts of the project's
own (``static/``): nothing is loaded from elsewhere, so the pages work on an air-gapped control
plane. A person signs in once with their token (``sessions``); every page then asks the same
``jobs.service`` functions the JSON API and the CLI use, as that person, so the service's
access rules decide what a page shows, and every action writes the same ledger entries.

- ``account``: sign in, sign out, the start page.
- ``owner``: the review queue, a job's review (dry run, spec, digests, image, the code's diff)
  and its decisions (approve, reject, trust), the outputs' review (release, refuse).
- ``researcher``: a person's jobs, updated live, a job's page, released files, its receipt.
- ``ledger``: the log's size, its last checkpoint, a verification run now, a job's entries.
- ``signing``: the browser's own key, which signs the owner's decisions (``static/sign.js``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from runner.control.web import account, ledger, owner, researcher, signing
from runner.control.web.highlight import stylesheet
from runner.control.web.render import page
from runner.control.web.sessions import PATH, live_session

STATIC = Path(__file__).with_name("static")

# Scripts and styles only from this origin, no inline script, no framing, forms only to us.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: under no-referrer Chromium sends `Origin: null` with our own
    # forms, which the CSRF check must refuse; other sites still learn no page address.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def is_page(request: Request) -> bool:
    """Whether ``request`` is for the web pages (not the JSON API)."""
    path = request.url.path
    return path == PATH or path.startswith(PATH + "/")


def error_page(request: Request, kind: str, message: str, status: int) -> Response | None:
    """How a page answers an error: the sign-in page for no session, else an error page
    with the error's own message. ``None`` for requests that are not for a page."""
    if not is_page(request):
        return None
    if status == 401:
        target = request.url.path if request.method == "GET" else PATH + "/"
        return RedirectResponse(f"{PATH}/sign-in?next={quote(target, safe='/')}", 303)
    titles = {
        403: "Not allowed",
        404: "Not found",
        409: "Not now",
        413: "Too large",
        503: "Not yet",
    }
    return page(
        request,
        "error.html",
        live_session(request),
        status=status,
        # As the API's: a file still on its data host, a service that blinked.
        headers={"Retry-After": "2"} if status == 503 else None,
        title=titles.get(status, "Error" if status >= 500 else "Cannot do that"),
        kind=kind,
        message=message,
    )


async def _security_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    response = await call_next(request)
    if is_page(request):
        for name, value in _HEADERS.items():
            response.headers.setdefault(name, value)
    return response


def install(app: FastAPI) -> None:
    """Serve the pages under ``/ui`` (and send ``/`` there)."""
    for module in (account, owner, researcher, ledger, signing):
        app.include_router(module.router)
    app.mount(f"{PATH}/static", StaticFiles(directory=STATIC), name="web-static")
    app.middleware("http")(_security_headers)

    @app.get(f"{PATH}/highlight.css", include_in_schema=False)
    def highlight_css() -> PlainTextResponse:
        return PlainTextResponse(stylesheet(), media_type="text/css")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse(f"{PATH}/", 303)
