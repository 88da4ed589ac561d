"""Who is looking at a page: the browser session, its cookie, and the CSRF checks on forms.

- **Signing in** exchanges a token for a session once (``Service.open_session``). The session's
  secret lives only in the ``c2d_session`` cookie: ``HttpOnly`` (no script reads it),
  ``SameSite=Lax`` (no other site's form or fetch carries it), ``Path=/ui`` (the JSON API at
  ``/v1`` never sees it and keeps taking bearer tokens only), and ``Secure`` whenever the page
  was served over HTTPS (directly, or behind a proxy uvicorn trusts for
  ``X-Forwarded-Proto``). Over plain HTTP, which is meant for localhost only, the cookie cannot
  be ``Secure``, or the browser would never send it back.
- **Every form** carries a CSRF token, the HMAC of the session's secret, checked on every POST
  (``posted``), and a POST whose ``Origin`` (or ``Sec-Fetch-Site``) says another site sent it
  is refused as well. The sign-in form, which has no session yet, is guarded the same way by a
  short-lived ``c2d_signin`` cookie whose value the form must repeat (login CSRF).
- **Signing out** ends the session in the store, so a copied cookie dies with it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from jobs.errors import NotAllowed, TooLarge, Unauthenticated
from jobs.models import User
from runner.control.api.deps import api_state

COOKIE = "c2d_session"
SIGNIN_COOKIE = "c2d_signin"
PATH = "/ui"
SIGNIN_S = 3600
MAX_FORM_BYTES = (
    1024 * 1024
)  # a note is at most 2000 characters; a signed release names every output


@dataclass(frozen=True)
class Viewer:
    """The signed-in person, their session's secret and the CSRF token of their forms."""

    user: User
    secret: str

    @property
    def csrf(self) -> str:
        """The token every form of this session carries (HMAC-SHA256 of the secret)."""
        return form_token(self.secret)


def form_token(secret: str) -> str:
    """The CSRF token bound to a session secret (or to the sign-in cookie's value)."""
    return hmac.new(secret.encode(), b"c2d web form", hashlib.sha256).hexdigest()


def is_https(request: Request) -> bool:
    """Whether the page was served over HTTPS (so its cookies can be ``Secure``)."""
    return request.url.scheme == "https"


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    """Set one of the pages' cookies with the attributes the module docstring gives."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=PATH,
        secure=is_https(request),
        httponly=True,
        samesite="lax",
    )


def forget_cookie(request: Request, response: Response, name: str) -> None:
    """Delete one of the pages' cookies."""
    response.delete_cookie(name, path=PATH, secure=is_https(request), httponly=True, samesite="lax")


def viewer(request: Request) -> Viewer:
    """The person whose session cookie came with ``request``; ``Unauthenticated`` (which the
    pages answer with the sign-in page) for none or an ended one."""
    secret = request.cookies.get(COOKIE)
    user = api_state(request).ctx.service.session_user(secret)
    assert secret is not None  # session_user accepted it
    return Viewer(user, secret)


def same_site(request: Request) -> None:
    """Refuse a POST that the browser says another site sent (``NotAllowed``)."""
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{request.url.netloc}"
    if origin is not None and origin != own:
        raise NotAllowed(f"this form was sent from {origin}, not from {own}; use c2d's own pages")
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise NotAllowed("this form was sent from another site; use c2d's own pages")


async def read_form(request: Request) -> FormData:
    """The posted form, at most ``MAX_FORM_BYTES`` (``TooLarge`` otherwise)."""
    length = request.headers.get("content-length")
    if length is None or not length.isdigit() or int(length) > MAX_FORM_BYTES:
        raise TooLarge(f"a form of the pages is at most {MAX_FORM_BYTES} bytes, sent at once")
    return await request.form()


def field(form: FormData, name: str) -> str:
    """A text field of ``form`` ("" when absent; a file in its place is refused)."""
    value = form.get(name, "")
    if not isinstance(value, str):
        raise NotAllowed(f"the field {name!r} must be text")
    return value


@dataclass(frozen=True)
class Posted:
    """A form whose CSRF token matched its sender's session."""

    viewer: Viewer
    form: FormData

    def text(self, name: str) -> str:
        """A text field of the form, with its line breaks as the page's script sees them: a
        browser sends a textarea's newlines as CR LF, which would reach the ledger (and not
        match what the script signed) as they came."""
        return field(self.form, name).replace("\r\n", "\n")


async def posted(request: Request) -> Posted:
    """The signed-in sender and their form, after the CSRF checks (``NotAllowed`` if any
    fails, ``Unauthenticated`` without a session)."""
    who = viewer(request)
    same_site(request)
    form = await read_form(request)
    if not hmac.compare_digest(field(form, "csrf").encode(), who.csrf.encode()):
        raise NotAllowed(
            "this form carries no valid CSRF token, so it may not come from your own c2d "
            "page; open the page again and send it from there"
        )
    return Posted(who, form)


def new_signin_value() -> str:
    """A fresh value for the sign-in cookie."""
    return secrets.token_urlsafe(24)


def check_signin(request: Request, form: FormData) -> None:
    """The sign-in form must repeat the token derived from its cookie (``NotAllowed``)."""
    same_site(request)
    cookie = request.cookies.get(SIGNIN_COOKIE) or ""
    sent = field(form, "csrf")
    if not cookie or not hmac.compare_digest(sent.encode(), form_token(cookie).encode()):
        raise NotAllowed(
            "the sign-in form was not sent from c2d's own sign-in page (or it is older than "
            "an hour); open the sign-in page again"
        )


def live_session(request: Request) -> Viewer | None:
    """The viewer, or None when nobody is signed in (pages that work either way)."""
    try:
        return viewer(request)
    except Unauthenticated:
        return None


SignedIn = Annotated[Viewer, Depends(viewer)]
Form = Annotated[Posted, Depends(posted)]
