"""What the signer learned from the server once per login, kept so later actions ask nothing.

Before its first signed action the client asks the server three things (``GET /v1/me``,
``/v1/ledger/public-key`` and ``/v1/me/keys``): who the token is, the log's origin, and whether
the key file is a registered, unrevoked key of that user. None of it changes within a login,
so the answer is kept beside the key file (``config.json`` -> ``config.signer.json``, mode
0600), one record per server URL, token and key fingerprint (the token stands for its user
without asking; only its SHA-256 is written).

A record can go stale only by something done elsewhere (the key revoked from another
machine): the server then refuses the signed action with 403, the client drops the record
(:func:`forget`) and says so, and the next action asks again. ``c2d login``, ``logout``,
``key rotate`` and ``key revoke`` drop every record (:func:`clear`). A cache file that cannot
be read, or that others could read, is treated as empty: it only ever saves requests.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.client.config import ClientEnv, config_path

SCHEMA_VERSION = 1
MAX_RECORDS = 16  # a handful of servers or tokens; the oldest goes first


@dataclass(frozen=True)
class Known:
    """The token's user and the server's origin, for which the key is registered, unrevoked."""

    user: str
    origin: str


def cache_path(env: ClientEnv) -> Path:
    """Where the records live: beside the key, named after the config file like it."""
    return config_path(env).with_suffix(".signer.json")


def _record_id(url: str, token: str | None, fingerprint: str) -> str:
    material = "\n".join((url.rstrip("/"), token or "", fingerprint))
    return hashlib.sha256(material.encode()).hexdigest()


def _read(path: Path) -> dict[str, Any]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return {}
    with os.fdopen(fd, "rb") as handle:
        if os.fstat(handle.fileno()).st_mode & 0o077:
            return {}
        try:
            doc = json.loads(handle.read(1 << 20))
        except ValueError:
            return {}
    if not isinstance(doc, dict) or doc.get("schema_version") != SCHEMA_VERSION:
        return {}
    records = doc.get("records")
    return records if isinstance(records, dict) else {}


def recall(env: ClientEnv, url: str, token: str | None, fingerprint: str) -> Known | None:
    """What was learned for this server, token and key, if anything."""
    record = _read(cache_path(env)).get(_record_id(url, token, fingerprint))
    if not isinstance(record, dict):
        return None
    user, origin = record.get("user"), record.get("origin")
    if not isinstance(user, str) or not isinstance(origin, str) or not user or not origin:
        return None
    return Known(user, origin)


def remember(env: ClientEnv, url: str, token: str | None, fingerprint: str, known: Known) -> None:
    """Keep ``known`` for this server, token and key (best effort: a cache that cannot be
    written costs the next action its requests, nothing more)."""
    path = cache_path(env)
    records = _read(path)
    records.pop(_record_id(url, token, fingerprint), None)
    records[_record_id(url, token, fingerprint)] = {
        "url": url.rstrip("/"),
        "fingerprint": fingerprint,
        "user": known.user,
        "origin": known.origin,
    }
    while len(records) > MAX_RECORDS:
        records.pop(next(iter(records)))
    with contextlib.suppress(OSError):
        _write(path, {"schema_version": SCHEMA_VERSION, "records": records})


def forget(env: ClientEnv, url: str, token: str | None, fingerprint: str) -> None:
    """Drop the record for this server, token and key (the server refused the key)."""
    path = cache_path(env)
    records = _read(path)
    if records.pop(_record_id(url, token, fingerprint), None) is not None:
        with contextlib.suppress(OSError):
            _write(path, {"schema_version": SCHEMA_VERSION, "records": records})


def clear(env: ClientEnv) -> None:
    """Drop every record: the login, or the keys, changed."""
    with contextlib.suppress(FileNotFoundError):
        cache_path(env).unlink()


def _write(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".signer-", dir=path.parent)  # created 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(doc, handle, indent=1)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
