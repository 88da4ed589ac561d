"""The one place an error becomes an HTTP response: its ``kind`` picks the status.

Every c2d error (``jobs``, ``ledger``, ``runner``) carries a ``kind``; the body is always
``{"error": {"kind": ..., "message": ...}}`` with the error's own message, which says what to
do next. FastAPI's own request validation and routing errors get the same shape. Anything else
is a bug: it is logged with its traceback and answered 500 without internals.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from jobs.errors import JobsError
from ledger import LedgerError
from runner.errors import RunnerError

log = logging.getLogger(__name__)

STATUS_BY_KIND: dict[str, int] = {
    "invalid": 422,
    "not_found": 404,
    "not_allowed": 403,
    "unauthenticated": 401,
    "conflict": 409,
    "too_large": 413,
    "unavailable": 503,
    "failed": 409,
}
"""HTTP status of each error kind (``failed``: the request cannot proceed, e.g. a digest)."""

KIND_BY_STATUS: dict[int, str] = {
    400: "invalid",
    401: "unauthenticated",
    403: "not_allowed",
    404: "not_found",
    405: "invalid",
    409: "conflict",
    413: "too_large",
    415: "invalid",
    416: "invalid",
    422: "invalid",
    503: "unavailable",
}

C2DError = (JobsError, LedgerError, RunnerError)


def status_of(kind: str) -> int:
    """The HTTP status of an error ``kind``; an unknown kind is a server-side failure (500)."""
    return STATUS_BY_KIND.get(kind, 500)


def error_body(kind: str, message: str) -> dict[str, Any]:
    """The JSON body of every error response."""
    return {"error": {"kind": kind, "message": message}}


def error_response(kind: str, message: str, status: int | None = None) -> JSONResponse:
    """An error response; 401s also name the scheme the client must use, and 413s close the
    connection: they come before the body was read, and a connection kept open would make the
    server read and discard the rest of an upload that may be gigabytes."""
    code = status if status is not None else status_of(kind)
    headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
    if code == 413:
        headers = {"Connection": "close"}
    return JSONResponse(error_body(kind, message), status_code=code, headers=headers)


def _message(exc: Exception) -> str:
    return str(getattr(exc, "message", None) or exc) or type(exc).__name__


async def _c2d_error(request: Request, exc: Exception) -> JSONResponse:
    kind = str(getattr(exc, "kind", "failed"))
    return error_response(kind, _message(exc))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err.get('loc', ()) if p != 'body') or 'body'}: {err.get('msg')}"
        for err in exc.errors()
    )
    return error_response("invalid", f"the request is not valid: {problems}")


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    kind = KIND_BY_STATUS.get(exc.status_code, "failed" if exc.status_code < 500 else "unavailable")
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"there is no route {request.method} {request.url.path}; see /docs"
    return error_response(kind, detail, exc.status_code)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error in %s %s", request.method, request.url.path)
    return error_response(
        "failed",
        f"the server failed while handling {request.method} {request.url.path}; "
        "its log says why; tell the operator",
        500,
    )


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    for cls in C2DError:
        app.add_exception_handler(cls, _c2d_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
