"""``c2d init``: a new installation's state folder, database, ledger key and admin token."""

from __future__ import annotations

from jobs.service import Service
from jobs.store import Store
from ledger import Ledger
from runner.context import limits_from
from runner.errors import HomeExists
from runner.settings import Settings

ADMIN = "admin"


def init_home(settings: Settings) -> str:
    """Create the installation at ``settings.home``; return the admin token (shown once).

    Raises ``HomeExists`` if the folder already holds a database or a ledger key.
    """
    home = settings.home
    for existing in (settings.db_path, settings.key_path):
        if existing.exists():
            raise HomeExists(
                f"{home} already holds a c2d installation ({existing.name}); nothing was "
                "changed. Use it as it is, or pick another folder with --home / C2D_HOME"
            )
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    home.chmod(0o700)
    ledger = Ledger(settings.db_path, settings.key_path, settings.origin)
    store = Store(settings.db_path)
    try:
        service = Service(store, ledger, limits=limits_from(settings))
        _, token = service.add_user(ADMIN, "admin", actor="operator")
    finally:
        store.close()
        ledger.close()
    for folder in (
        settings.artifacts_dir,
        settings.work_dir,
        settings.code_dir,
        settings.uploads_dir,
    ):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return token
