"""What every part of ``Service`` shares: the store, the ledger, the clock and small helpers."""

from __future__ import annotations

import base64
import re
import secrets
import sqlite3
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from jobs import access
from jobs.errors import InvalidRequest, NotAllowed, NotFound
from jobs.fields import NAME_HELP, NAME_PATTERN
from jobs.host_records import Host
from jobs.limits import Limits
from jobs.models import Dataset, Job, User
from jobs.signed_actions import (
    ActionStatement,
    SignaturePolicy,
    SignedEnvelope,
    check_signed,
    check_unsigned,
)
from jobs.store import Store
from ledger import Ledger
from ledger.statements import verify_statement

M = TypeVar("M", bound=BaseModel)


def new_job_id() -> str:
    """A random job id: 12 lowercase hex digits (so containers are ``c2d-job-<id>``)."""
    return secrets.token_hex(6)


def dataset_subject(name: str) -> str:
    """The ledger subject of a dataset's entries."""
    return f"dataset:{name}"


def user_subject(name: str) -> str:
    """The ledger subject of a user's entries."""
    return f"user:{name}"


def worker_actor(worker: str) -> str:
    """The ledger actor of a worker's entries."""
    return f"worker:{worker}"


def check_name(name: str, what: str) -> str:
    """Return ``name`` if it is a valid c2d name, else raise ``InvalidRequest``."""
    if not isinstance(name, str) or not re.fullmatch(NAME_PATTERN, name):
        raise InvalidRequest(f"{what} {name!r} is not allowed; use {NAME_HELP}")
    return name


def build(model: type[M], **data: Any) -> M:
    """Construct a model from request data; a validation error becomes ``InvalidRequest``."""
    try:
        return model(**data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or model.__name__}: "
            + str(err["msg"]).removeprefix("Value error, ")
            for err in exc.errors()
        )
        raise InvalidRequest(f"invalid {model.__name__.lower()}: {problems}") from exc


class ServiceCore:
    """Holds the collaborators; see ``jobs.service.Service`` for the public contract."""

    def __init__(
        self,
        store: Store,
        ledger: Ledger,
        clock: Callable[[], float] = time.time,
        limits: Limits | None = None,
        new_id: Callable[[], str] = new_job_id,
        signatures: SignaturePolicy = SignaturePolicy.REQUIRED,
    ) -> None:
        # A state change and its entry commit together only if both live in one file.
        if Path(store.path).resolve() != Path(ledger.db_path).resolve():
            raise ValueError(
                f"the store ({store.path}) and the ledger ({ledger.db_path}) must share one "
                "database file"
            )
        self._store = store
        self._ledger = ledger
        self._clock = clock
        self.limits = limits or Limits()
        self._new_id = new_id
        self.signatures = signatures

    def _signed(
        self,
        user: str,
        signed: SignedEnvelope | None,
        expected: Callable[[str], ActionStatement],
    ) -> dict[str, Any]:
        """``{"signed": envelope}`` for the entry once ``signed`` is shown to be ``user``'s
        signature over the statement ``expected`` builds (given the nonce the envelope carries,
        for a submission). Unsigned: empty if ``self.signatures`` takes it from ``user``
        (``check_unsigned``), else ``NotAllowed``. Called inside the transaction, so keys are
        judged at the sequence number the entry gets."""
        size = self._ledger.size()
        if signed is None:
            check_unsigned(self._store, self.signatures, user, size)
            return {}
        nonce = str(signed.statement.get("nonce", ""))
        return {"signed": check_signed(self._store, size, expected(nonce), signed)}

    @property
    def store(self) -> Store:
        """The store (for read-only use by the next layer, e.g. tests and the reconciler)."""
        return self._store

    @property
    def ledger(self) -> Ledger:
        """The ledger entries are appended to."""
        return self._ledger

    def _now(self) -> float:
        return float(self._clock())

    def _record(
        self,
        conn: sqlite3.Connection,
        type_: str,
        actor: str,
        subject: str,
        body: Mapping[str, Any],
    ) -> None:
        """Append one ledger entry inside the caller's open transaction on ``conn``."""
        self._ledger.append(type_, actor, subject, body, conn=conn)

    def _dataset(self, name: str) -> Dataset:
        dataset = self._store.get_dataset(name)
        if dataset is None:
            raise NotFound(
                f"dataset {name!r} is not registered; run `c2d dataset list` to see the names"
            )
        return dataset

    def _job(self, job_id: str) -> Job:
        job = self._store.get_job(job_id)
        if job is None:
            raise NotFound(f"job {job_id!r} does not exist; run `c2d jobs` to see yours")
        return job

    def _visible(self, actor: User, job_id: str) -> tuple[Job, Dataset]:
        """The job and its dataset if ``actor`` may see it; ``NotFound`` otherwise."""
        job = self._store.get_job(job_id)
        dataset = self._store.get_dataset(job.dataset) if job else None
        if job is None or dataset is None or not access.can_see(actor, job, dataset):
            raise NotFound(f"job {job_id!r} does not exist; run `c2d jobs` to see yours")
        return job, dataset

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
