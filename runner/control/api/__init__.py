"""The c2d HTTP API: ``create_app(settings)``; the contract is /work/notes/api.md."""

from runner.control.api.app import create_app

__all__ = ["create_app"]
