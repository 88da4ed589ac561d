"""The one place an error becomes an HTTP response: its ``kind`` picks the status.

Every c2d error (``jobs``, ``ledger``, ``runner``) carries a ``kind``; the body is always
``{"error": {"kind": ..., "message": ...}}`` with the error's own message, which says what to
do next. FastAPI's own request validation and routing errors get the same shape. Anything else
is a bug: it is logged with its traceback and answered 500 without internals. Requests for the
web pages get the same message on an HTML page instead (``install``'s ``pages``).

Each route declares the errors it may answer with ``errors(...)``, so the OpenAPI document
says what a client gets (schemathesis holds the API to it in CI).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
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
    status = exc.status_code
    if status == 404 and detail == "Not Found":
        detail = f"there is no route {request.method} {request.url.path}; see /docs"
    if status == 400:
        # FastAPI's answer to a body it cannot decode (not UTF-8, say): an invalid request,
        # answered as every other invalid request is.
        status = status_of(kind)
        detail = f"{detail}; send the body the route documents (see /docs)"
    response = _respond(request, kind, detail, status)
    for name, value in (exc.headers or {}).items():
        response.headers.setdefault(name, value)
    if status == 405:
        response.headers["Allow"] = _allowed(request)
    return response


def _allowed(request: Request) -> str:
    """Every method some route of the app has on this path (RFC 9110's ``Allow``): Starlette
    names only those of the one route it tried, and ``GET /v1/jobs`` and ``POST /v1/jobs``
    are two routes (in two routers)."""
    return ", ".join(sorted(_methods(request.app.router.routes, request.url.path)))


def _methods(routes: Iterable[Any], path: str) -> set[str]:
    found: set[str] = set()
    for route in routes:
        regex = getattr(route, "path_regex", None)
        methods = getattr(route, "methods", None)
        if regex is not None and methods and regex.match(path):
            found |= set(methods)
        # An included router (FastAPI keeps it whole) holds its routes, prefix and all.
        inner = getattr(getattr(route, "original_router", None), "routes", None)
        if inner:
            found |= _methods(inner, path)
    return found


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
    _with_error_body(app)


class ErrorDetail(BaseModel):
    """What went wrong: its ``kind`` (the status follows from it) and what to do next."""

    kind: ErrorKind
    message: str


class ErrorBody(BaseModel):
    """The body of every error response of the API."""

    error: ErrorDetail


_MEANING: dict[int, str] = {
    401: "No token, or one that is unknown, revoked or rotated away; the message says which "
    "(`WWW-Authenticate: Bearer`).",
    403: "The caller's role or relation to the thing does not allow this.",
    404: "No such thing, or one the caller may not see.",
    409: "The thing is not in a state that allows this (yet, or any more).",
    413: "The body is larger than this server accepts; the connection is closed.",
    422: "The request is not valid; the message names the field and what it must be.",
    503: "A file is still on its data host, or a service does not answer; try again after "
    "`Retry-After` seconds.",
}


_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"schema": {"type": "string", "const": "Bearer"}}},
    503: {"Retry-After": {"schema": {"type": "string", "pattern": "^[0-9]+$"}}},
}

_REF = "#/components/schemas/ErrorBody"


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route that may answer ``statuses`` with the JSON error body.

    Every route declares the errors its handler and its dependencies can raise, so the
    OpenAPI document tells a client (and schemathesis in CI) what to expect:
    ``@router.get("/{job_id}", responses=errors(401, 404, 422))``. A route with a path,
    query or body parameter can answer 422; one that needs a token, 401. The body is JSON
    whatever the route's own media type (a log is text, its 404 is not), so it is stated
    here rather than left to FastAPI, which would give it the route's media type.
    """
    return {
        status: {
            "description": _MEANING[status],
            "content": {"application/json": {"schema": {"$ref": _REF}}},
            **({"headers": _HEADERS[status]} if status in _HEADERS else {}),
        }
        for status in sorted(statuses)
    }


def _with_error_body(app: FastAPI) -> None:
    """Add ``ErrorBody`` (which ``errors`` refers to) to the app's OpenAPI components."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
            components = document.setdefault("components", {}).setdefault("schemas", {})
            components.update(schema.pop("$defs", {}))
            components["ErrorBody"] = schema
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
