"""``c2d init``: a new installation's state folder, database, ledger key and admin token."""

from __future__ import annotations

from typing import Any

from jobs.models import User
from jobs.service import Service
from jobs.store import Store
from ledger import Ledger
from runner.context import limits_from
from runner.errors import HomeExists
from runner.installation import record_installation
from runner.settings import Settings

ADMIN = "admin"
LOCAL_HOST = "local"


def _enroll_local(settings: Settings, service: Service, admin: User, name: str) -> None:
    """Add data host ``name`` and enroll it from its own folder under ``settings.hosts_dir``."""
    from runner.host.identity import enroll

    _, enroll_token = service.add_host(admin, name)

    def call(_url: str, token: str, public_key: str) -> dict[str, Any]:
        host, credential = service.enroll_host(token, public_key)
        return {
            "name": host.name,
            "token": credential,
            "origin": settings.origin,
            "installation": settings.installation,
        }

    host_home = settings.hosts_dir / name
    enroll(settings.model_copy(update={"home": host_home}), local_url(settings), enroll_token, call)


def local_url(settings: Settings) -> str:
    """The URL a data host on this machine reaches the API at."""
    host = "127.0.0.1" if settings.bind in ("0.0.0.0", "::", "") else settings.bind  # noqa: S104
    return f"http://{host}:{settings.port}"


def init_home(settings: Settings, local_host: str | None = LOCAL_HOST) -> str:
    """Create the installation at ``settings.home``; return the admin token (shown once).

    With ``local_host`` (the default, ``local``) a data host of that name is added and
    enrolled at once, its state folder under ``settings.hosts_dir`` (`c2d up` runs it): the
    same enrollment a host on another machine makes over HTTP, made here in-process.

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
    settings = settings.model_copy(update={"installation": record_installation(settings)})
    ledger = Ledger(settings.db_path, settings.key_path, settings.origin)
    store = Store(settings.db_path)
    try:
        service = Service(store, ledger, limits=limits_from(settings))
        admin, token = service.add_user(ADMIN, "admin", actor="operator")
        if local_host is not None:
            _enroll_local(settings, service, admin, local_host)
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
