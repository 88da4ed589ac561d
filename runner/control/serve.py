"""Running the control plane: ``c2d server`` (the HTTP API and its reconciler), and ``c2d up``
for one machine.

``serve`` runs the API under uvicorn on ``bind:port`` in the foreground, with the control
plane's reconciler beside it. ``up`` runs them in a thread and hands the main thread to the
data host agent it is given (the CLI passes ``runner.host.agent.run_agent`` for the host
``local`` that ``c2d init`` enrolled, which talks to this API over HTTP like any other host);
stopping the agent stops the API.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from runner.context import setup_logging
from runner.errors import ServiceUnavailable, SettingsError
from runner.settings import Settings

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger(__name__)

SERVER_START_S = 30.0


def _server(settings: Settings) -> uvicorn.Server:
    import uvicorn

    from runner.control.api import create_app

    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise SettingsError(
            "HTTPS needs both C2D_TLS_CERT and C2D_TLS_KEY (PEM files); set both, or neither "
            "for plain HTTP"
        )
    for path in (settings.tls_cert, settings.tls_key):
        if path is not None and not path.is_file():
            raise SettingsError(
                f"{path} is not a file; C2D_TLS_CERT and C2D_TLS_KEY name PEM files"
            )
    config = uvicorn.Config(
        create_app(settings, reconcile=True),
        host=settings.bind,
        port=settings.port,
        log_level="info",
        # In JSON, uvicorn's own lines (requests, start-up) go through c2d's handler too.
        log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
        ssl_certfile=str(settings.tls_cert) if settings.tls_cert else None,
        ssl_keyfile=str(settings.tls_key) if settings.tls_key else None,
    )
    return uvicorn.Server(config)


def serve(settings: Settings) -> None:
    """Run the HTTP API in the foreground until SIGINT or SIGTERM."""
    setup_logging(settings.log_format)
    _server(settings).run()


def up(settings: Settings, run_agent: Callable[[], int]) -> int:
    """Run the API and ``run_agent`` (one data host's agent) in this process, for one machine."""
    setup_logging(settings.log_format)
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
        return run_agent()
    finally:
        server.should_exit = True
        thread.join(SERVER_START_S)
