"""Data hosts as the control plane knows them: their names, keys, credentials and last word.

A data host is a machine beside data, run by a data owner, that connects out to the control
plane and never the other way. The control plane keeps, per host (migration 6):

- its name (also the name of its queue, ``c2d.NAME``), who added it and when;
- a one-time enrollment token's hash until the host enrolls, then its Ed25519 public key (what
  it signs with: dataset attestations, run outcomes) and its own credential's hash;
- when it last spoke, which environments it offers (name -> local image ID), its agent, and
  whether its Docker engine answered then (migration 8).

``HostRecords`` is the part of ``jobs.store.Store`` that reads and writes them.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from jobs.errors import Conflict
from jobs.fields import FROZEN, SCHEMA_VERSION, Name


class HostEnvironment(BaseModel):
    """An environment a data host offers: its local image ID and the library versions pinned
    in it (what a researcher's machine needs to load the models it makes)."""

    model_config = FROZEN

    image_id: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    pins: dict[str, Annotated[str, Field(max_length=64)]] = Field(
        default_factory=dict, max_length=64
    )


class Host(BaseModel):
    """A data host: ``public_key`` (base64 of 32 raw bytes) is None until it enrolled."""

    model_config = FROZEN

    schema_version: Literal[1] = SCHEMA_VERSION
    name: Name
    added_by: str
    created: float
    public_key: str | None = None
    fingerprint: str | None = None
    enrolled: float | None = None
    last_seen: float | None = None
    environments: dict[str, HostEnvironment] = Field(default_factory=dict)
    agent: str = ""
    engine_ok: bool | None = None


_COLUMNS = (
    "name, added_by, created, public_key, fingerprint, enrolled, last_seen, environments, agent,"
    " engine_ok"
)


def _host(row: tuple[Any, ...]) -> Host:
    values = dict(zip([c.strip() for c in _COLUMNS.split(",")], row, strict=True))
    values["environments"] = json.loads(values["environments"] or "{}")
    values["engine_ok"] = None if values["engine_ok"] is None else bool(values["engine_ok"])
    return Host(**values)


class HostRecords:
    """Store methods for ``hosts`` (mixed into ``Store``)."""

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        raise NotImplementedError  # provided by Store

    def _write(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        raise NotImplementedError  # provided by Store

    def add_host(self, host: Host, enroll_hash: str) -> None:
        """A new host waiting to enroll; ``Conflict`` if the name is taken."""
        try:
            self._write(
                "INSERT INTO hosts (name, added_by, created, enroll_hash, environments, agent)"
                " VALUES (?, ?, ?, ?, '{}', '')",
                (host.name, host.added_by, host.created, enroll_hash),
            )
        except sqlite3.IntegrityError as exc:
            raise Conflict(
                f"a data host named {host.name!r} exists already; pick another name, or "
                f"renew its enrollment with `c2d host add {host.name} --renew`"
            ) from exc

    def renew_enrollment(self, name: str, enroll_hash: str) -> None:
        """Let host ``name`` enroll again (a new machine or key): its key and credential go."""
        self._write(
            "UPDATE hosts SET enroll_hash = ?, public_key = NULL, fingerprint = NULL,"
            " token_hash = NULL, enrolled = NULL WHERE name = ?",
            (enroll_hash, name),
        )

    def host_by_enroll_hash(self, enroll_hash: str) -> Host | None:
        rows = self._read(f"SELECT {_COLUMNS} FROM hosts WHERE enroll_hash = ?", (enroll_hash,))
        return _host(rows[0]) if rows else None

    def enroll_host(
        self, name: str, public_key: str, fingerprint: str, token_hash: str, now: float
    ) -> None:
        """Bind the host's key and credential; the enrollment token is spent. The host has
        not said hello yet (its agent does when it starts): what an earlier key's agent
        offered is forgotten."""
        self._write(
            "UPDATE hosts SET public_key = ?, fingerprint = ?, token_hash = ?, enrolled = ?,"
            " last_seen = NULL, environments = '{}', agent = '', engine_ok = NULL,"
            " enroll_hash = NULL"
            " WHERE name = ? AND enroll_hash IS NOT NULL",
            (public_key, fingerprint, token_hash, now, name),
        )

    def host_by_token_hash(self, token_hash: str) -> tuple[Host, str] | None:
        rows = self._read(
            f"SELECT {_COLUMNS}, token_hash FROM hosts WHERE token_hash = ?", (token_hash,)
        )
        return (_host(rows[0][:-1]), rows[0][-1]) if rows else None

    def get_host(self, name: str) -> Host | None:
        rows = self._read(f"SELECT {_COLUMNS} FROM hosts WHERE name = ?", (name,))
        return _host(rows[0]) if rows else None

    def list_hosts(self) -> list[Host]:
        return [_host(r) for r in self._read(f"SELECT {_COLUMNS} FROM hosts ORDER BY name")]

    def host_seen(
        self,
        name: str,
        now: float,
        environments: dict[str, HostEnvironment],
        agent: str,
        engine_ok: bool | None = None,
    ) -> None:
        offered = {k: v.model_dump(mode="json") for k, v in environments.items()}
        self._write(
            "UPDATE hosts SET last_seen = ?, environments = ?, agent = ?, engine_ok = ?"
            " WHERE name = ?",
            (now, json.dumps(offered, sort_keys=True), agent, engine_ok, name),
        )

    def running_on(self, name: str) -> list[str]:
        """Ids of the running jobs of host ``name``'s datasets."""
        rows = self._read(
            "SELECT id FROM jobs WHERE state = 'running'"
            " AND dataset IN (SELECT name FROM datasets WHERE host = ?) ORDER BY id",
            (name,),
        )
        return [str(r[0]) for r in rows]
