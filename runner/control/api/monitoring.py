"""Routes an operator's monitoring reads: ``/metrics`` and ``/v1/ready``.

``/metrics`` (Prometheus text format, ``runner.control.metrics``) is for admins only: it counts
every dataset's jobs and names data hosts and workers, so it takes an admin's bearer token like
the other admin routes (401 without a valid one, 403 for any other role). ``/v1/ready``
(``runner.control.readiness``) takes no token, like ``/v1/health``, because load balancers and
orchestrators probe it: 200 when every check passes, 503 otherwise, with each check named.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel

from jobs import access
from jobs.errors import NotAllowed, Unauthenticated
from runner.control.api.deps import Actor, ApiState, api_state
from runner.control.api.errors import errors
from runner.control.metrics import Metrics
from runner.control.readiness import HOST_PREFIX, Check, Readiness

router = APIRouter()


class CheckResult(BaseModel):
    """One readiness check: passed or not, and what it saw (or what to do)."""

    ok: bool
    detail: str


class ReadyBody(BaseModel):
    """``GET /v1/ready``'s answer, 200 or 503 alike: every check by name (``database``,
    ``ledger_key``, ``redis``, ``host:NAME``)."""

    ready: bool
    checks: dict[str, CheckResult]


@dataclass
class Monitoring:
    """One app's metrics and readiness checks, made once and closed with the app."""

    metrics: Metrics
    readiness: Readiness

    def close(self) -> None:
        self.metrics.close()
        self.readiness.close()


def install(app: FastAPI, state: ApiState) -> Monitoring:
    """Add the routes to ``app``; the caller closes what this returns when the app stops."""
    monitoring = Monitoring(Metrics(state.ctx), Readiness(state.ctx))
    app.state.c2d_monitoring = monitoring
    app.include_router(router)
    return monitoring


def _monitoring(request: Request) -> Monitoring:
    found: Monitoring = request.app.state.c2d_monitoring
    return found


_METRICS: dict[int | str, dict[str, Any]] = {
    200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "The metrics."}
}
_NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {"model": ReadyBody, "description": "Not ready: see which check failed."}
}


@router.get(
    "/metrics",
    response_class=Response,
    responses=_METRICS | errors(401, 403),
)
def metrics(request: Request, actor: Actor) -> Response:
    """Metrics in Prometheus's text format (admins only): jobs by state, dataset and data
    host, queue ages, dispatch and run durations, dry runs, output bytes, the ledger, leases."""
    if not access.is_admin(actor):
        raise NotAllowed(
            "only admins read /metrics; scrape it with an admin's token (`c2d user add NAME "
            "--role admin` makes one for Prometheus)"
        )
    return Response(_monitoring(request).metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.get(
    "/v1/ready",
    response_model=ReadyBody,
    responses=_NOT_READY | errors(422),
)
def ready(
    request: Request,
    hosts: Annotated[
        bool, Query(description="Check the enrolled data hosts too (false: the API's own only).")
    ] = True,
) -> JSONResponse:
    """Readiness, without a token: the database takes writes, the ledger key reads, Redis
    answers, and each enrolled data host said hello lately with its engine answering.

    Anyone may probe it, so without an admin's token it says only which checks failed, and
    counts the data hosts (``hosts``) instead of naming them: the names of the hosts taking
    part, the state folder's paths and the errors seen are for admins."""
    checks = _monitoring(request).readiness.checks(hosts=hosts)
    ok = all(check.ok for check in checks)
    shown = checks if _is_admin(request) else _public(checks)
    body: dict[str, Any] = {"ready": ok, "checks": {c.name: c.view() for c in shown}}
    return JSONResponse(body, status_code=200 if ok else 503)


def _is_admin(request: Request) -> bool:
    """Whether ``request`` carries an admin's bearer token. Read here rather than declared as
    the route's security: the route is open to anyone, and a token only adds detail."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    try:
        return access.is_admin(api_state(request).ctx.service.authenticate(token.strip()))
    except Unauthenticated:
        return False


def _public(checks: list[Check]) -> list[Check]:
    """``checks`` as anyone may read them: verdicts without details, data hosts counted."""
    own = [
        Check(c.name, c.ok, "ok" if c.ok else "failing (an admin's token shows why)")
        for c in checks
        if not c.name.startswith(HOST_PREFIX)
    ]
    hosts = [c for c in checks if c.name.startswith(HOST_PREFIX)]
    if not hosts:
        return own
    ready = sum(c.ok for c in hosts)
    detail = f"{ready} of {len(hosts)} data hosts ready"
    if ready < len(hosts):
        detail += " (an admin's token shows which)"
    return [*own, Check("hosts", ready == len(hosts), detail)]
