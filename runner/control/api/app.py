"""``create_app(settings)``: the c2d HTTP API (v1) as a FastAPI application.

The routes live in one module per concern (``people``, ``jobs``, ``reviewing``, ``submit``,
``events``, ``results``, ``audit``, ``develop``, ``preparing``, ``hosting``); ``errors`` turns
every error into the contract's JSON body (or, for the web pages under ``/ui`` that
``runner.control.web`` adds, an HTML page). OpenAPI is served at ``/openapi.json`` and
``/docs``.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from runner.context import Context, open_context
from runner.control import web
from runner.control.api import (
    audit,
    develop,
    errors,
    events,
    hosting,
    jobs,
    keys,
    monitoring,
    people,
    preparing,
    results,
    reviewing,
    submit,
)
from runner.control.api.deps import ApiState, State
from runner.settings import Settings


def version() -> str:
    """The installed c2d version."""
    try:
        return importlib.metadata.version("c2d")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def create_app(
    settings: Settings, *, context: Context | None = None, reconcile: bool = False
) -> FastAPI:
    """The API for the control plane at ``settings.home`` (``c2d init`` must have made it).

    ``context`` replaces the one opened from ``settings`` (tests pass one with a clock); the
    app closes whichever it uses when it shuts down. With ``reconcile`` the control plane's
    reconciler (``runner.control.reconciler``) runs beside it while it serves.
    """
    state = ApiState(context or open_context(settings))
    watch: monitoring.Monitoring | None = None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        reconciler = None
        if reconcile:
            from runner.control.reconciler import Reconciler

            reconciler = Reconciler(state.ctx, state.sender())
            reconciler.start()
        try:
            yield
        finally:
            if reconciler is not None:
                reconciler.stop()
            if watch is not None:
                watch.close()
            state.close()

    app = FastAPI(
        title="c2d",
        version=version(),
        description=(
            "Compute-to-data: approved code runs beside private data; only declared outputs "
            "leave; every step is in a signed ledger. Send `Authorization: Bearer TOKEN`."
        ),
        lifespan=lifespan,
    )
    app.state.c2d = state
    errors.install(app, pages=web.error_page)

    @app.get("/v1/health")
    def health(api: State) -> dict[str, Any]:
        """Liveness, without a token: the version and the ledger's origin."""
        return {"ok": True, "version": version(), "origin": api.ctx.settings.origin}

    for module in (
        people,
        keys,
        submit,
        reviewing,
        jobs,
        events,
        results,
        audit,
        develop,
        preparing,
    ):
        app.include_router(module.router)
    app.include_router(hosting.people)
    app.include_router(hosting.hosts)
    watch = monitoring.install(app, state)  # /metrics and /v1/ready
    web.install(app)
    return app
