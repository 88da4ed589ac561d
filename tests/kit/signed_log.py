"""A ledger whose actions carry real Ed25519 signatures, as the API will write them.

Builds the entries by hand (``Ledger.append``), so the ledger's checks are tested without the
service that will produce them: people's ``user.key`` entries, a host's ``host.enrolled``, and
a job whose submit, approval and release are signed envelopes and whose outcome the host
signed. Forgeries are appended the same way, as an operator holding the log's key could.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import Ledger
from ledger.actors import canonical_digest
from ledger.keys import raw_public_key
from ledger.statements import fingerprint, sign_statement

DIGEST = "sha256:" + "ab" * 32


@dataclass
class Person:
    """A user or host and the private key only they hold."""

    name: str
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    @property
    def public(self) -> str:
        return base64.b64encode(raw_public_key(self.key)).decode()

    @property
    def fingerprint(self) -> str:
        return fingerprint(raw_public_key(self.key))

    def envelope(self, statement: dict[str, Any]) -> dict[str, Any]:
        """The ``signed`` field of an entry recording this person's action."""
        return {
            "statement": statement,
            "signature": sign_statement(self.key, statement),
            "key": self.fingerprint,
        }


def register(ledger: Ledger, person: Person) -> int:
    """Append the person's ``user.key`` entry; return its seq."""
    body = {"public_key": person.public, "fingerprint": person.fingerprint}
    return ledger.append("user.key", person.name, f"user:{person.name}", body).seq


def revoke(ledger: Ledger, person: Person) -> int:
    """Append a ``user.key_revoked`` of the person's key; return its seq."""
    body = {"fingerprint": person.fingerprint, "reason": "lost laptop"}
    return ledger.append("user.key_revoked", person.name, f"user:{person.name}", body).seq


def enroll(ledger: Ledger, host: Person) -> int:
    """Append the host's ``host.enrolled`` entry; return its seq."""
    body = {"public_key": host.public, "fingerprint": host.fingerprint}
    return ledger.append("host.enrolled", f"host:{host.name}", f"host:{host.name}", body).seq


def submit(ledger: Ledger, researcher: Person, job: str, *, nonce: str | None = None) -> int:
    """Append a signed ``job.submitted``; return its seq."""
    statement = {
        "type": "c2d/submit",
        "version": 1,
        "origin": ledger.origin,
        "user": researcher.name,
        "nonce": nonce or secrets.token_hex(16),
        "dataset": "patients",
        "bundle": DIGEST,
        "image": "python-ml",
        "params": DIGEST,
    }
    body = {
        "dataset": "patients",
        "code_digest": DIGEST,
        "dataset_digest": DIGEST,
        "signed": researcher.envelope(statement),
    }
    return ledger.append("job.submitted", researcher.name, job, body).seq


def publish(
    ledger: Ledger,
    owner: Person,
    host: Person,
    digest: str = DIGEST,
    *,
    signer: Person | None = None,
    unsigned: bool = False,
    dataset: str = "patients",
) -> int:
    """Append the ``dataset.registered`` of ``dataset`` with ``digest`` by ``owner``, attested
    and signed by ``host`` as the control plane records it, and published with the signature
    of ``signer`` (default: the owner; another person's key makes a forgery), or none
    (``unsigned``). Return its seq."""
    policy = {"owner": owner.name, "host": host.name, "review_outputs": True}
    attested = {
        "type": "c2d.host.dataset/1",
        "host": host.name,
        "name": dataset,
        "owner": owner.name,
        "digest": digest,
        "files": 2,
        "bytes": 10,
        "profile_digest": DIGEST,
    }
    statement = {
        "type": "c2d/publish",
        "version": 1,
        "origin": ledger.origin,
        "user": owner.name,
        "dataset": dataset,
        "host": host.name,
        "digest": digest,
        "host_statement": canonical_digest(attested),
        "policy": canonical_digest(policy),
    }
    body = {
        "digest": digest,
        "files": 2,
        "bytes": 10,
        "policy": policy,
        "schema_digest": DIGEST,
        "replaces": None,
        "host": host.name,
        "host_key": host.fingerprint,
        "host_signature": sign_statement(host.key, attested),
        "host_statement_digest": canonical_digest(attested),
        "profile_digest": DIGEST,
    }
    if not unsigned:
        body["signed"] = (signer or owner).envelope(statement)
    return ledger.append("dataset.registered", owner.name, f"dataset:{dataset}", body).seq


def decision_statement(ledger: Ledger, owner: Person, job: str) -> dict[str, Any]:
    """The statement an owner signs to approve ``job``."""
    return {
        "type": "c2d/decision",
        "version": 1,
        "origin": ledger.origin,
        "user": owner.name,
        "job": job,
        "decision": "approve",
        "code_digest": DIGEST,
        "image_id": DIGEST,
        "dataset_digest": DIGEST,
        "params_digest": DIGEST,
        "note": "",
    }


def approve(ledger: Ledger, actor: str, job: str, envelope: dict[str, Any] | None) -> int:
    """Append a ``job.approved`` by ``actor`` carrying ``envelope`` (None: unsigned)."""
    body: dict[str, Any] = {"approver": actor, "note": "", "by_policy": False}
    if envelope is not None:
        body["signed"] = envelope
    return ledger.append("job.approved", actor, job, body).seq


def finish(ledger: Ledger, host: Person, job: str) -> int:
    """Append a ``job.finished`` whose outcome ``host`` signed, as the control plane records it."""
    outcome = "sha256:" + "cd" * 32
    statement = {
        "type": "c2d.host.outcome/1",
        "host": host.name,
        "job": job,
        "fence": 1,
        "outcome_digest": outcome,
    }
    body = {
        "state": "succeeded",
        "fence": 1,
        "outcome_digest": outcome,
        "host": host.name,
        "host_key": host.fingerprint,
        "host_signature": sign_statement(host.key, statement),
    }
    return ledger.append("job.finished", "worker:h1", job, body).seq


def release(ledger: Ledger, owner: Person, job: str) -> int:
    """Append a signed ``job.released``; return its seq."""
    statement = {
        "type": "c2d/release",
        "version": 1,
        "origin": ledger.origin,
        "user": owner.name,
        "job": job,
        "outputs": [{"name": "model.skops", "digest": DIGEST}],
    }
    body = {"by_policy": False, "signed": owner.envelope(statement)}
    return ledger.append("job.released", owner.name, job, body).seq


@dataclass
class SignedJob:
    """The actors of one fully signed job in ``ledger``."""

    ledger: Ledger
    bob: Person
    alice: Person
    host: Person
    job: str = "job-1"
    published: int | None = None


def published_job(ledger: Ledger) -> SignedJob:
    """Like :func:`signed_job`, with alice's signed publication of the dataset the job ran on
    (registered by host h1) before the job's submit."""
    world = SignedJob(ledger, Person("bob"), Person("alice"), Person("h1"))
    register(ledger, world.bob)
    register(ledger, world.alice)
    enroll(ledger, world.host)
    world.published = publish(ledger, world.alice, world.host)
    _run_job(world)
    return world


def signed_job(ledger: Ledger) -> SignedJob:
    """Keys for bob, alice and host h1, then job-1 submitted, approved, run and released."""
    world = SignedJob(ledger, Person("bob"), Person("alice"), Person("h1"))
    register(ledger, world.bob)
    register(ledger, world.alice)
    enroll(ledger, world.host)
    _run_job(world)
    return world


def _run_job(world: SignedJob) -> None:
    ledger = world.ledger
    ledger.append("job.other", "carol", "job-0", {"n": 0})
    submit(ledger, world.bob, world.job)
    approve(
        ledger,
        "alice",
        world.job,
        world.alice.envelope(decision_statement(ledger, world.alice, world.job)),
    )
    ledger.append("job.started", "worker:h1", world.job, {"fence": 1})
    finish(ledger, world.host, world.job)
    release(ledger, world.alice, world.job)
