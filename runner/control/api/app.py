"""``create_app(settings)``: the c2d HTTP API (v1) as a FastAPI application.

The routes live in one module per concern (``people``, ``jobs``, ``submit``, ``results``,
``audit``, ``develop``); ``errors`` turns every error into the contract's JSON body. OpenAPI is
served at ``/openapi.json`` and ``/docs``.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from runner.context import Context, open_context
from runner.control.api import audit, develop, errors, events, jobs, people, results, submit
from runner.control.api.deps import ApiState, State
from runner.host.engine import Engine
from runner.settings import Settings


def version() -> str:
    """The installed c2d version."""
    try:
        return importlib.metadata.version("c2d")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def create_app(settings: Settings, *, context: Context | None = None) -> FastAPI:
    """The API for the installation at ``settings.home`` (``c2d init`` must have made it).

    ``context`` replaces the one opened from ``settings`` (tests pass one with a fake image
    resolver); the app closes whichever it uses when it shuts down.
    """
    # The API builds and loads researchers' own images at submission, so it holds the engine.
    state = ApiState(context or open_context(settings, engine=Engine(settings.work_dir)))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
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
    errors.install(app)

    @app.get("/v1/health")
    def health(api: State) -> dict[str, Any]:
        """Liveness, without a token: the version and the ledger's origin."""
        return {"ok": True, "version": version(), "origin": api.ctx.settings.origin}

    for module in (people, submit, jobs, events, results, audit, develop):
        app.include_router(module.router)
    return app
