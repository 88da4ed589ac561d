"""Who a data host is: its name, the control plane it answers to, its key and its credential.

All of it lives in the host's own state folder, written once by ``enroll``:

- ``host.key``: the host's Ed25519 private key (mode 0600), made on the host and never sent;
  it signs what the host attests (dataset digests, run outcomes);
- ``host.token``: its credential with the control plane (mode 0600), which the control plane
  gives in exchange for the one-time enrollment token and the public key;
- ``host.json``: its name, the control plane's URL, origin and installation id (the prefix of
  the Redis keys its queue lives under), the key's fingerprint, and the dataset roots its agent
  last started with.

A host process loads them with ``load_identity``; the URL may be overridden by ``C2D_API_URL``.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from jobs.errors import InvalidRequest
from ledger.keys import load_or_create_signing_key, load_signing_key, raw_public_key
from ledger.statements import fingerprint, sign_statement
from runner.errors import HomeExists, HostNotEnrolled
from runner.installation import check_installation_id
from runner.settings import Settings

Enroller = Callable[[str, str, str], dict[str, Any]]
"""``(api_url, enrollment token, public key base64)`` to ``{"name", "token", "origin",
"installation"}``: the call to the control plane (``runner.host.port_http.enroll_call`` over
HTTP; tests may call the service)."""


@dataclass(frozen=True)
class HostIdentity:
    """A data host as it knows itself."""

    name: str
    api_url: str
    key: Ed25519PrivateKey
    credential: str
    origin: str = ""
    """The control plane's origin (the name of its ledger)."""
    installation: str = ""
    """The control plane's installation id: the prefix of its broker's keys, which the host's
    queue shares (empty for a control plane made before ids existed: its origin is the
    prefix)."""

    @property
    def public_key(self) -> str:
        """Base64 of the 32 raw bytes of the host's public key."""
        return base64.b64encode(raw_public_key(self.key)).decode()

    @property
    def fingerprint(self) -> str:
        return fingerprint(raw_public_key(self.key))

    def sign(self, statement: Mapping[str, Any]) -> str:
        """The host's signature over ``statement`` (``ledger.statements``)."""
        return sign_statement(self.key, statement)


def _write_secret(path: os.PathLike[str], text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def enroll(settings: Settings, api_url: str, token: str, call: Enroller) -> HostIdentity:
    """Make this host's key, enroll it with the control plane at ``api_url`` using the one-time
    ``token``, and keep key, credential and name in ``settings.home``.

    Refuses (``HomeExists``) a state folder whose host has enrolled already: renew the
    enrollment (`c2d host add NAME --renew`) and enroll into a new folder instead.
    """
    if settings.host_file.exists():
        raise HomeExists(
            f"{settings.home} already holds an enrolled data host ({settings.host_file.name}); "
            "nothing was changed. To enroll again, use a new folder (--home / C2D_HOME)"
        )
    settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    settings.home.chmod(0o700)
    key = load_or_create_signing_key(settings.host_key_path)
    public = base64.b64encode(raw_public_key(key)).decode()
    answer = call(api_url.rstrip("/"), token, public)
    installation = str(answer.get("installation") or "")
    if installation:
        check_installation_id(installation)
    _write_secret(settings.host_token_path, str(answer["token"]))
    facts = {
        "name": answer["name"],
        "api_url": api_url.rstrip("/"),
        "origin": str(answer.get("origin") or ""),
        "installation": installation,
        "fingerprint": fingerprint(raw_public_key(key)),
        "dataset_roots": settings.dataset_roots,
    }
    settings.host_file.write_text(json.dumps(facts, indent=2) + "\n")
    return load_identity(settings)


def load_identity(settings: Settings) -> HostIdentity:
    """This host's identity from ``settings.home`` (``C2D_API_URL`` overrides the URL)."""
    try:
        facts = json.loads(settings.host_file.read_text())
        credential = settings.host_token_path.read_text().strip()
        key = load_signing_key(settings.host_key_path)
    except FileNotFoundError as exc:
        raise HostNotEnrolled(
            f"{settings.home} holds no enrolled data host; an admin adds it with "
            "`c2d host add NAME`, then run `c2d host enroll URL TOKEN` here"
        ) from exc
    return HostIdentity(
        name=str(facts["name"]),
        api_url=settings.api_url.rstrip("/") or str(facts["api_url"]),
        key=key,
        credential=credential,
        origin=str(facts.get("origin") or ""),
        installation=str(facts.get("installation") or ""),
    )


def find_host_home(home: Path) -> Path:
    """The data host state folder ``home`` means: ``home`` itself if a host enrolled there,
    else the one host under a single machine's ``home/hosts/`` (`c2d up`'s ``local``).

    Raises ``HostNotEnrolled`` (none there) or ``InvalidRequest`` (several: say which).
    """
    if (home / "host.json").is_file():
        return home
    found = sorted(p.parent for p in (home / "hosts").glob("*/host.json"))
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        names = ", ".join(str(p) for p in found)
        raise InvalidRequest(
            f"{home} holds several data hosts ({names}); pass the one you mean with --home"
        )
    raise HostNotEnrolled(
        f"{home} holds no enrolled data host; an admin adds it with `c2d host add NAME`, then "
        "run `c2d host enroll URL` on the host (or pass its folder with --home)"
    )


def with_saved_roots(settings: Settings) -> Settings:
    """``settings`` with this host's dataset roots: C2D_DATASET_ROOTS where set, else the roots
    its agent last started with (kept in ``host.json``), so an owner's `c2d dataset add` on the
    host checks the same roots the agent runs jobs under."""
    if settings.dataset_roots or not settings.host_file.is_file():
        return settings
    saved = json.loads(settings.host_file.read_text()).get("dataset_roots") or ""
    return settings.model_copy(update={"dataset_roots": str(saved)})


def save_roots(settings: Settings) -> None:
    """Keep the agent's dataset roots in ``host.json`` (see ``with_saved_roots``)."""
    facts = json.loads(settings.host_file.read_text())
    if facts.get("dataset_roots") != settings.dataset_roots:
        facts["dataset_roots"] = settings.dataset_roots
        temp = settings.host_file.with_suffix(".tmp")
        temp.write_text(json.dumps(facts, indent=2) + "\n")
        temp.replace(settings.host_file)
