"""The one place an error becomes an HTTP response: its ``kind`` picks the status.

Every c2d error (``jobs``, ``ledger``, ``runner``) carries a ``kind``; the body is always
``{"error": {"kind": ..., "message": ...}}`` with the error's own message, which says what to
do next. FastAPI's own request validation and routing errors get the same shape. Anything else
is a bug: it is logged with its traceback and answered 500 without internals. Requests for the
web pages get the same message on an HTML page instead (``install``'s ``pages``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from jobs.errors import JobsError
from ledger import LedgerError
from ledger.kinds import ErrorKind, kind_of
from runner.errors import HTTP_STATUS, RunnerError, kind_of_status

log = logging.getLogger(__name__)

C2DError = (JobsError, LedgerError, RunnerError)


def status_of(kind: str) -> int:
    """The HTTP status of an error ``kind`` (``runner.errors.HTTP_STATUS``); a kind outside
    the vocabulary is a bug on the server's side (500)."""
    try:
        return HTTP_STATUS[ErrorKind(kind)]
    except ValueError:
        return 500


def error_body(kind: str, message: str) -> dict[str, Any]:
    """The JSON body of every error response."""
    return {"error": {"kind": kind, "message": message}}


def error_response(kind: str, message: str, status: int | None = None) -> JSONResponse:
    """An error response; 401s also name the scheme the client must use, and 413s close the
    connection: they come before the body was read, and a connection kept open would make the
    server read and discard the rest of an upload that may be gigabytes. 503s say when to try
    again (a file still on its data host, a service that blinked)."""
    code = status if status is not None else status_of(kind)
    headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
    if code == 413:
        headers = {"Connection": "close"}
    if code == 503:
        headers = {"Retry-After": "2"}
    return JSONResponse(error_body(kind, message), status_code=code, headers=headers)


def _message(exc: Exception) -> str:
    return str(getattr(exc, "message", None) or exc) or type(exc).__name__


Pages = Callable[[Request, str, str, int], Response | None]
"""How the web pages answer an error (``runner.control.web.error_page``): a response for a
request that was for a page, ``None`` for the API's own requests."""


def _respond(request: Request, kind: str, message: str, status: int | None = None) -> Response:
    code = status if status is not None else status_of(kind)
    pages: Pages | None = getattr(request.app.state, "error_pages", None)
    if pages is not None:
        shown = pages(request, kind, message, code)
        if shown is not None:
            return shown
    return error_response(kind, message, code)


async def _c2d_error(request: Request, exc: Exception) -> Response:
    kind = kind_of(exc)
    return _respond(request, kind, _message(exc))


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err.get('loc', ()) if p != 'body') or 'body'}: {err.get('msg')}"
        for err in exc.errors()
    )
    return _respond(request, "invalid", f"the request is not valid: {problems}")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    kind = kind_of_status(exc.status_code)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"there is no route {request.method} {request.url.path}; see /docs"
    return _respond(request, kind, detail, exc.status_code)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error in %s %s", request.method, request.url.path)
    return _respond(
        request,
        "failed",
        f"the server failed while handling {request.method} {request.url.path}; "
        "its log says why; tell the operator",
        500,
    )


def install(app: FastAPI, pages: Pages | None = None) -> None:
    """Register the handlers on ``app``; ``pages`` answers errors of the web pages."""
    app.state.error_pages = pages
    for cls in C2DError:
        app.add_exception_handler(cls, _c2d_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


class ErrorDetail(BaseModel):
    """What went wrong (``kind``, from which the status follows) and what to do next."""

    kind: ErrorKind
    message: str


class ErrorBody(BaseModel):
    """The body of every error response: ``{"error": {"kind", "message"}}``."""

    error: ErrorDetail


_STATUS_MEANS: dict[int, str] = {
    401: "No token, or one that is unknown, revoked or rotated away; the message says which.",
    403: "The caller's role does not allow this.",
    404: "No such thing, or one the caller may not see.",
    409: "The thing's state does not allow this (yet, or any more).",
    422: "The request is not valid; the message names the field.",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route that answers ``statuses`` with ``ErrorBody``, so the
    OpenAPI document says which errors a client must expect."""
    return {s: {"model": ErrorBody, "description": _STATUS_MEANS[s]} for s in sorted(statuses)}
