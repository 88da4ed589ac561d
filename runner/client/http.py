"""How HTTP failures become c2d errors on the client side.

An error response becomes `ApiError(kind, message, status)` with the kind and message of the
contract's body `{"error": {"kind", "message"}}` (or, for a response without that body, a kind
read from the status). A server that does not answer becomes `ServiceUnavailable` naming the
URL and how to start one. The CLI then maps the kind to an exit code like any local error.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import httpx

from runner.errors import ApiError, ServiceUnavailable, kind_of_status


def api_error(response: httpx.Response) -> ApiError:
    """The error an error response stands for (its body must already be read)."""
    status = response.status_code
    kind: str = kind_of_status(status)  # unless the body says
    message = ""
    try:
        body = response.json()
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and isinstance(error.get("kind"), str):
            kind = error["kind"]
            message = str(error.get("message") or "")
        elif isinstance(body, dict) and "detail" in body:
            message = str(body["detail"])
    except ValueError:
        message = response.text[:500].strip()
    if not message:
        message = f"HTTP {status} {response.reason_phrase}".strip()
    if status == 500:
        where = f"{response.request.method} {response.request.url.path}"
        message += f" ({where}: the server failed; its log says why)"
    return ApiError(kind, message, status)


def unavailable(url: str, exc: httpx.TransportError) -> ServiceUnavailable:
    """The error for an API at `url` that did not answer (refused, unreachable, timed out)."""
    if isinstance(exc, httpx.TimeoutException):
        return ServiceUnavailable(
            f"the c2d API at {url} did not answer in time ({type(exc).__name__}); "
            "check that the server is healthy, or raise --timeout"
        )
    return ServiceUnavailable(
        f"no c2d API answers at {url} ({exc}); start one with `c2d server` "
        "(or `c2d up` on a single machine), or point C2D_URL / `c2d login` at the right one"
    )


def parse_sse(lines: Iterable[str]) -> Iterator[tuple[str, str]]:
    """Server-sent events from the lines of a `text/event-stream` body, as `(event, data)`.

    As the format says: `event:` names the event (default `message`), `data:` lines join with
    newlines, a blank line ends an event, lines starting with `:` are comments (the server's
    pings), other fields (`id:`, `retry:`) are not used by c2d.
    """
    name, data = "message", list[str]()
    for line in lines:
        if not line:
            if data:
                yield name, "\n".join(data)
            name, data = "message", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
