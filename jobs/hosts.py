"""Data hosts: added by an admin, enrolled once by the host itself, then speaking for itself.

- ``add_host`` (admin): a new host name and a one-time enrollment token (``c2de_...``), shown
  once; ``host.added``.
- ``enroll_host`` (the enrollment token, on the host): binds the host's Ed25519 public key and
  gives it its own credential (``c2dh_...``), shown once; the token is spent; ``host.enrolled``
  (with the key and its fingerprint, so anyone can later check what the host signed).
- ``authenticate_host``: the host holding a credential. A host acts only for jobs of its own
  datasets (``host_job``); people's routes never accept a host's credential, nor the other way.
- ``host_seen``: the host's periodic hello (its environments and agent); no entry.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from jobs.accounts import new_token, token_hash
from jobs.errors import InvalidRequest, NotAllowed, NotFound, Unauthenticated
from jobs.host_records import Host
from jobs.models import Job, Role, User
from jobs.service_core import ServiceCore, build, check_name
from ledger.keys import PUBLIC_KEY_SIZE
from ledger.statements import fingerprint, verify_statement

HOST_TOKEN_PREFIX = "c2dh_"  # noqa: S105 - a prefix, not a secret
ENROLL_TOKEN_PREFIX = "c2de_"  # noqa: S105 - a prefix, not a secret


def host_subject(name: str) -> str:
    """The ledger subject of a host's entries."""
    return f"host:{name}"


def host_actor(name: str) -> str:
    """The ledger actor of what a host does itself."""
    return f"host:{name}"


class Hosts(ServiceCore):
    """The control plane's side of data hosts."""

    def add_host(self, actor: User, name: str, *, renew: bool = False) -> tuple[Host, str]:
        """Add data host ``name`` (admins only); return it and its one-time enrollment token.

        With ``renew`` an existing host may enroll again (a new machine or key): its key and
        credential stop working at once. Entry ``host.added``. Raises ``NotAllowed``,
        ``InvalidRequest`` (name), ``Conflict`` (taken, without ``renew``), ``NotFound``
        (``renew`` of an unknown host).
        """
        if actor.role is not Role.ADMIN:
            raise NotAllowed("only admins add data hosts; ask one to run `c2d host add NAME`")
        check_name(name, "data host name")
        token = new_token(ENROLL_TOKEN_PREFIX)
        with self._store.transaction() as conn:
            if renew:
                if self._store.get_host(name) is None:
                    raise NotFound(f"there is no data host {name!r} to renew; add it first")
                self._store.renew_enrollment(name, token_hash(token))
            else:
                host = build(Host, name=name, added_by=actor.name, created=self._now())
                self._store.add_host(host, token_hash(token))
            self._record(conn, "host.added", actor.name, host_subject(name), {"renew": renew})
        return self._host(name), token

    def enroll_host(self, enroll_token: str, public_key: str) -> tuple[Host, str]:
        """Enroll the host the token was made for with ``public_key`` (base64 of 32 bytes);
        return it and its credential. Entry ``host.enrolled``. Raises ``Unauthenticated``
        (unknown or spent token), ``InvalidRequest`` (not a key)."""
        try:
            raw = base64.b64decode(public_key, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != PUBLIC_KEY_SIZE:
            raise InvalidRequest("public_key must be base64 of the 32 raw bytes of an Ed25519 key")
        credential = new_token(HOST_TOKEN_PREFIX)
        with self._store.transaction() as conn:
            host = self._store.host_by_enroll_hash(token_hash(enroll_token or ""))
            if host is None:
                raise Unauthenticated(
                    "unknown or used enrollment token; ask an admin for a new one "
                    "(`c2d host add NAME --renew`)"
                )
            print_ = fingerprint(raw)
            self._store.enroll_host(
                host.name, public_key, print_, token_hash(credential), self._now()
            )
            body = {"public_key": public_key, "fingerprint": print_}
            self._record(
                conn, "host.enrolled", host_actor(host.name), host_subject(host.name), body
            )
        return self._host(host.name), credential

    def authenticate_host(self, token: str | None) -> Host:
        """The host holding credential ``token``; ``Unauthenticated`` otherwise."""
        if token:
            presented = token_hash(token)
            found = self._store.host_by_token_hash(presented)
            if found is not None and hmac.compare_digest(found[1], presented):
                return found[0]
        raise Unauthenticated(
            "missing or unknown data host credential; enroll the host again "
            "(`c2d host add NAME --renew`, then `c2d host enroll URL TOKEN` on the host)"
        )

    def host_seen(self, host: Host, environments: dict[str, str], agent: str) -> Host:
        """Record the host's hello: when, its environments (name -> image ID), its agent."""
        if len(environments) > 100 or any(len(k) + len(v) > 200 for k, v in environments.items()):
            raise InvalidRequest("at most 100 environments, each a short name and an image ID")
        with self._store.transaction():
            self._store.host_seen(host.name, self._now(), dict(environments), agent[:200])
        return self._host(host.name)

    def list_hosts(self) -> list[Host]:
        """Every data host (its key's fingerprint, last hello; never a credential)."""
        return self._store.list_hosts()

    def _host(self, name: str) -> Host:
        host = self._store.get_host(name)
        if host is None:
            raise NotFound(f"there is no data host {name!r}; `c2d hosts` lists them")
        return host

    def host_job(self, host: Host, job_id: str) -> Job:
        """Job ``job_id`` if it runs on ``host`` (its dataset's host); ``NotFound`` otherwise,
        so a host learns nothing of other hosts' jobs."""
        job = self._store.get_job(job_id)
        dataset = self._store.get_dataset(job.dataset) if job else None
        if job is None or dataset is None or dataset.policy.host != host.name:
            raise NotFound(f"job {job_id!r} is not a job of data host {host.name}")
        return job

    def check_host_signature(
        self, host: Host, statement: dict[str, object], signature: str
    ) -> None:
        """Refuse (``NotAllowed``) a statement the host's enrolled key did not sign."""
        key = base64.b64decode(host.public_key) if host.public_key else b""
        if not key or not verify_statement(key, statement, signature):
            raise NotAllowed(
                f"the signature over this {statement.get('type')} statement is not data host "
                f"{host.name}'s (key {host.fingerprint}); nothing was recorded"
            )
