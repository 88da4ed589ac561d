"""The moving parts of c2d: sandbox, collector, dispatch, API, client, CLI and settings."""
