"""Data hosts: added by an admin, enrolled once by the host itself, then speaking for itself.

- ``add_host`` (admin): a new host name and a one-time enrollment token (``c2de_...``), shown
  once; ``host.added``.
- ``enroll_host`` (the enrollment token, on the host): binds the host's Ed25519 public key and
  gives it its own credential (``c2dh_...``), shown once; the token is spent; ``host.enrolled``
  (with the key and its fingerprint, so anyone can later check what the host signed).
- ``authenticate_host``: the host holding a credential. A host acts only for jobs of its own
  datasets (``host_job``); people's routes never accept a host's credential, nor the other way.
- ``host_seen``: the host's periodic hello (its environments, agent, and whether its Docker
  engine answered); no entry.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Any

from jobs.accounts import new_token, token_hash
from jobs.errors import Conflict, InvalidRequest, NotAllowed, NotFound, Unauthenticated
from jobs.host_records import Host, HostEnvironment
from jobs.models import Dataset, Job, Role, User
from jobs.service_core import ServiceCore, build, check_name
from jobs.states import JobState
from ledger.keys import PUBLIC_KEY_SIZE
from ledger.statements import fingerprint

HOST_TOKEN_PREFIX = "c2dh_"  # noqa: S105 - a prefix, not a secret
ENROLL_TOKEN_PREFIX = "c2de_"  # noqa: S105 - a prefix, not a secret
MAX_LOG_UPLOAD = 4 * 1024 * 1024  # a kept log is capped at a few MiB (runner.host.sandbox.logs)


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

    def host_seen(
        self,
        host: Host,
        environments: dict[str, Any],
        agent: str,
        engine_ok: bool | None = None,
    ) -> Host:
        """Record the host's hello: when, its environments (name -> ``HostEnvironment``: image
        ID and pins), its agent, whether its engine answered (``None``: it did not say).
        Raises ``InvalidRequest`` for a malformed offer."""
        if len(environments) > 100:
            raise InvalidRequest("a data host offers at most 100 environments")
        offered = {}
        for name, value in environments.items():
            check_name(name, "environment name")
            if not isinstance(value, dict):
                raise InvalidRequest(f"environment {name}: expected {{image_id, pins}}")
            offered[name] = build(HostEnvironment, **value)
        with self._store.transaction():
            self._store.host_seen(host.name, self._now(), offered, agent[:200], engine_ok)
        return self._host(host.name)

    def list_hosts(self) -> list[Host]:
        """Every data host (its key's fingerprint, last hello; never a credential)."""
        return self._store.list_hosts()

    def running_on(self, name: str) -> list[str]:
        """Ids of the jobs running on data host ``name``."""
        return self._store.running_on(name)

    def offered_image(self, host_name: str, environment: str) -> str:
        """The image ID of ``environment`` on data host ``host_name``, as its last hello said.

        Raises ``NotFound`` (no such host), ``Conflict`` (the host never said hello, or does
        not offer the environment: its operator builds it there with `c2d image build`).
        """
        host = self._host(host_name)
        offered = host.environments.get(environment)
        if offered is not None:
            return offered.image_id
        if host.last_seen is None or host.public_key is None:
            raise Conflict(
                f"data host {host_name} has not reported in yet; its operator starts it "
                "(`c2d host start`), and jobs for it can be submitted once `c2d hosts` shows it"
            )
        others = ", ".join(sorted(host.environments)) or "none"
        raise Conflict(
            f"data host {host_name} does not offer environment {environment!r} (it offers: "
            f"{others}); pick one of those in job.yaml, or ask its operator to build it there "
            f"(`c2d image build {environment}`)"
        )

    def get_host(self, name: str) -> Host:
        """Data host ``name``; ``NotFound`` if there is none."""
        return self._host(name)

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

    def host_dataset(self, host: Host, name: str) -> Dataset:
        """Dataset ``name`` if it lives on ``host``; ``NotFound`` otherwise."""
        dataset = self._store.get_dataset(name)
        if dataset is None or dataset.policy.host != host.name:
            raise NotFound(f"dataset {name!r} is not a dataset of data host {host.name}")
        return dataset

    def upload_allowed(self, host: Host, job_id: str, kind: str, digest: str) -> int:
        """The most bytes ``host`` may upload as job ``job_id``'s ``kind`` with ``digest``.

        An ``output`` only once the job is released and only one the outcome the host signed
        names (its size exactly); a ``review`` copy of such an output once the job succeeded
        (kept apart, for its owner); the ``log`` only the one the outcome names (capped), which
        is kept for those who may read logs. Raises ``NotFound``, ``NotAllowed``.
        """
        job = self.host_job(host, job_id)
        outcome = job.outcome
        if outcome is None:
            raise NotAllowed(f"job {job_id} has no outcome yet; nothing of it may be uploaded")
        if kind in ("output", "review"):
            if kind == "output" and job.state is not JobState.RELEASED:
                raise NotAllowed(f"job {job_id} is {job.state.value}; outputs leave on release")
            if kind == "review" and job.state not in (JobState.SUCCEEDED, JobState.RELEASED):
                raise NotAllowed(f"job {job_id} is {job.state.value}; nothing to review")
            for output in outcome.outputs:
                if output.sha256 == digest:
                    return output.bytes
            raise NotAllowed(f"{digest} is not an output of job {job_id}'s outcome")
        if kind == "log" and outcome.log_digest == digest:
            return MAX_LOG_UPLOAD
        raise NotAllowed(f"{digest} is not job {job_id}'s log")
