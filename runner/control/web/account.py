"""Signing in and out, and the start page (the queue for owners, a researcher's own jobs)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from jobs import access
from jobs.errors import Unauthenticated
from jobs.people_records import EndedToken
from runner.control.api.deps import State
from runner.control.web.render import page
from runner.control.web.sessions import (
    COOKIE,
    PATH,
    SIGNIN_COOKIE,
    SIGNIN_S,
    Form,
    SignedIn,
    check_signin,
    forget_cookie,
    form_token,
    is_https,
    live_session,
    new_signin_value,
    read_form,
    set_cookie,
)

router = APIRouter(prefix=PATH, include_in_schema=False)


def safe_next(target: str | None) -> str | None:
    """``target`` if it is a page of ours (``/ui/...``), else None: never an open redirect."""
    if not target or not target.startswith(PATH + "/") or target.startswith("//"):
        return None
    if any(c in target for c in "\\\r\n\t") or "//" in target:
        return None
    if any(part in (".", "..") for part in target.split("?")[0].split("/")):
        return None
    return target


@router.get("/")
def home(who: SignedIn) -> RedirectResponse:
    """Owners and admins start at their queue, researchers at their jobs."""
    start = "queue" if access.may_register(who.user) else "jobs"
    return RedirectResponse(f"{PATH}/{start}", 303)


def _sign_in_page(
    request: Request, next_page: str | None, error: str | None = None, status: int = 200
) -> Response:
    value = request.cookies.get(SIGNIN_COOKIE) or new_signin_value()
    response = page(
        request,
        "sign_in.html",
        None,
        status=status,
        title="Sign in",
        signin_csrf=form_token(value),
        next_page=safe_next(next_page) or "",
        error=error,
        https=is_https(request),
    )
    set_cookie(request, response, SIGNIN_COOKIE, value, SIGNIN_S)
    return response


@router.get("/sign-in")
def sign_in_form(
    request: Request, next_page: Annotated[str | None, Query(alias="next")] = None
) -> Response:
    """The sign-in form (or, for someone signed in already, where they were going)."""
    if live_session(request) is not None:
        return RedirectResponse(safe_next(next_page) or f"{PATH}/", 303)
    return _sign_in_page(request, next_page)


@router.post("/sign-in")
async def sign_in(request: Request, state: State) -> Response:
    """Exchange the token for a session; the cookie carries its secret from then on."""
    form = await read_form(request)
    check_signin(request, form)
    token = form.get("token")
    next_page = form.get("next")
    target = safe_next(next_page if isinstance(next_page, str) else None)
    try:
        _, secret = await run_in_threadpool(
            state.ctx.service.open_session,
            token.strip() if isinstance(token, str) else None,
            state.ctx.settings.web_session_s,
        )
    except EndedToken as exc:  # revoked or rotated away: say so, and what to do
        return _sign_in_page(request, target, str(exc), status=401)
    except Unauthenticated:
        return _sign_in_page(
            request,
            target,
            "That token is not one c2d knows. Use the token `c2d user add` printed for you.",
            status=401,
        )
    response = RedirectResponse(target or f"{PATH}/", 303)
    set_cookie(request, response, COOKIE, secret, int(state.ctx.settings.web_session_s))
    forget_cookie(request, response, SIGNIN_COOKIE)
    return response


@router.post("/sign-out")
def sign_out(request: Request, sent: Form, state: State) -> Response:
    """End the session in the store and drop its cookie."""
    state.ctx.service.close_session(sent.viewer.secret)
    response = RedirectResponse(f"{PATH}/sign-in", 303)
    forget_cookie(request, response, COOKIE)
    return response
