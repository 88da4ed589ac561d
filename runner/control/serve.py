"""Running the control plane: ``c2d server`` (the HTTP API), and ``c2d up`` for one machine.

``serve`` runs the API under uvicorn on ``bind:port`` in the foreground. ``up`` runs the API in a
thread and hands the main thread to the data host's worker it is given (the CLI passes
``runner.host.agent.run_worker``); stopping the worker stops the API.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from runner.context import setup_logging
from runner.errors import ServiceUnavailable
from runner.settings import Settings

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger(__name__)

SERVER_START_S = 30.0


def _server(settings: Settings) -> uvicorn.Server:
    import uvicorn

    from runner.control.api import create_app

    config = uvicorn.Config(
        create_app(settings), host=settings.bind, port=settings.port, log_level="info"
    )
    return uvicorn.Server(config)


def _warn_without_roots(settings: Settings) -> None:
    if not settings.dataset_root_paths:
        log.warning(
            "no dataset roots are set, so no dataset can be registered and none runs; set "
            "C2D_DATASET_ROOTS to the folders that hold datasets (absolute, comma-separated)"
        )


def serve(settings: Settings) -> None:
    """Run the HTTP API in the foreground until SIGINT or SIGTERM."""
    setup_logging()
    _warn_without_roots(settings)
    _server(settings).run()


def up(settings: Settings, run_worker: Callable[[Settings], int]) -> int:
    """Run the API and ``run_worker`` (one data host's worker) in this process, for one machine."""
    setup_logging()
    _warn_without_roots(settings)
    server = _server(settings)
    thread = threading.Thread(target=server.run, name="c2d-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + SERVER_START_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise ServiceUnavailable(
                f"the API did not start on {settings.bind}:{settings.port}; is the port taken? "
                "Pick another with --port"
            )
        time.sleep(0.05)
    try:
        return run_worker(settings)
    finally:
        server.should_exit = True
        thread.join(SERVER_START_S)
