"""What people sign when they act on a job, and how the server checks it.

Five statements, each an RFC 8785 document with a ``type``, ``version: 1``, the server's ledger
``origin`` and the acting ``user``, signed with the person's key (``jobs.user_keys``):

- ``c2d/submit`` (the researcher): the dataset, the bundle digest, the environment and the
  params digest of a new job, with a ``nonce`` of her choosing so one signature submits once;
- ``c2d/decision`` (the data owner): approve or reject, with the four digests an approval binds
  and the note (for a rejection, the reason);
- ``c2d/trust`` (the data owner): trusting a code digest on a dataset for one researcher, with
  one params digest or any (null);
- ``c2d/release`` (the data owner): the name and digest of every held output, as the data
  host's signed outcome lists them;
- ``c2d/publish`` (the data owner): publishing a dataset, as its data host attested it (the
  digest, and the digest of the host's signed statement) with her policy (its digest).

One function per statement builds it from plain values, so the client (from the job it read
over the API) and the server (from the job it holds) build the same bytes. The server never
takes a statement on trust: it rebuilds the one it expects and ``check_signed`` compares the
signed one with it field by field before it checks the signature against a key of the user
that was registered, and not revoked, before the entry being written (``Store.user_key_at``).
The envelope then goes into the entry's body as ``signed``, so anyone holding the ``user.key``
entries can check it offline.

An action without an envelope would be the operator's word only, and a bearer token alone
would be enough to act. ``SignaturePolicy`` says when the server takes one: never
(``required``, the default), or only from a person who has no registered key yet
(``keyholders``: for installations whose people act with bare tokens, and for tests of other
things); a person holding a key must sign under both, so a stolen token cannot act without
the key (``check_unsigned``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from jobs.digests import canonical_digest
from jobs.errors import InvalidRequest, NotAllowed
from jobs.fields import FROZEN, Name
from jobs.key_records import KeyRecords
from jobs.user_keys import verify_statement

SUBMIT: Final = "c2d/submit"
DECISION: Final = "c2d/decision"
TRUST: Final = "c2d/trust"
RELEASE: Final = "c2d/release"
PUBLISH: Final = "c2d/publish"


class SignaturePolicy(StrEnum):
    """When the server records a person's action that carries no signature."""

    REQUIRED = "required"
    """Never: every submit, decision, trust and release is signed by a key of the actor."""
    KEYHOLDERS = "keyholders"
    """Only from a person with no registered, unrevoked key (recorded as unsigned)."""


NONCE = re.compile(r"[0-9a-f]{32}")
"""A submit nonce: 32 lowercase hex digits (16 random bytes)."""


class SubmitStatement(BaseModel):
    """ "I, ``user``, submit this bundle with this environment and params on ``dataset``."

    ``image`` is the environment the job's spec names (``spec.environment``): the server
    resolves it to an image ID only after it has the job, so the researcher signs the name she
    chose. A job that brings its own image binds it through its Dockerfile in the bundle.
    """

    model_config = FROZEN

    type: Literal["c2d/submit"] = SUBMIT
    version: Literal[1] = 1
    origin: str
    user: Name
    nonce: str = Field(pattern=NONCE.pattern)
    dataset: str
    bundle: str
    image: str
    params: str


class DecisionStatement(BaseModel):
    """ "I, ``user``, approve (or reject) job ``job`` with exactly these digests and note"."""

    model_config = FROZEN

    type: Literal["c2d/decision"] = DECISION
    version: Literal[1] = 1
    origin: str
    user: Name
    job: str
    decision: Literal["approve", "reject"]
    code_digest: str
    image_id: str
    dataset_digest: str
    params_digest: str
    note: str


class TrustStatement(BaseModel):
    """ "I, ``user``, trust this code on ``dataset`` for ``researcher``, with these params
    (``params_digest`` null: any params)"."""

    model_config = FROZEN

    type: Literal["c2d/trust"] = TRUST
    version: Literal[1] = 1
    origin: str
    user: Name
    dataset: str
    code_digest: str
    researcher: str
    params_digest: str | None


class ReleasedOutput(BaseModel):
    """One held output: its name under ``/outputs`` and its sha256 digest."""

    model_config = FROZEN

    name: str
    digest: str


class ReleaseStatement(BaseModel):
    """ "I, ``user``, release these outputs of job ``job``" (sorted by name)."""

    model_config = FROZEN

    type: Literal["c2d/release"] = RELEASE
    version: Literal[1] = 1
    origin: str
    user: Name
    job: str
    outputs: list[ReleasedOutput]


class PublishStatement(BaseModel):
    """ "I, ``user``, publish dataset ``dataset`` as host ``host`` attested it, with this policy".

    ``host_statement`` is the canonical digest of the host's signed ``c2d.host.dataset/1``
    statement and ``policy`` that of the policy's public dump, both as the
    ``dataset.registered`` entry records them (``host_statement_digest``, ``policy``), so the
    signature can be checked against the entry without the profile, which may be private.
    """

    model_config = FROZEN

    type: Literal["c2d/publish"] = PUBLISH
    version: Literal[1] = 1
    origin: str
    user: Name
    dataset: str
    host: str
    digest: str
    host_statement: str
    policy: str


ActionStatement = (
    SubmitStatement | DecisionStatement | TrustStatement | ReleaseStatement | PublishStatement
)


class SignedEnvelope(BaseModel):
    """What a request carries, and the entry keeps, to say who signed what: the statement,
    base64 of the Ed25519 signature over its canonical JSON, and the key's fingerprint."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    statement: dict[str, Any]
    signature: str = Field(max_length=200)
    key: str = Field(max_length=100)


def submit_statement(
    origin: str, user: str, nonce: str, *, dataset: str, bundle: str, image: str, params: str
) -> SubmitStatement:
    """The statement for submitting ``bundle`` (its digest) on ``dataset`` with environment
    ``image`` and params digest ``params``."""
    return SubmitStatement(
        origin=origin,
        user=user,
        nonce=nonce,
        dataset=dataset,
        bundle=bundle,
        image=image,
        params=params,
    )


def decision_statement(
    origin: str,
    user: str,
    job: Mapping[str, Any],
    decision: Literal["approve", "reject"],
    note: str,
) -> DecisionStatement:
    """The statement for deciding about ``job`` (its API view, or the same fields of a
    ``Job``): its id and the four digests an approval binds."""
    return DecisionStatement(
        origin=origin,
        user=user,
        job=job["id"],
        decision=decision,
        code_digest=job["code_digest"],
        image_id=job["image_id"],
        dataset_digest=job["dataset_digest"],
        params_digest=job["params_digest"],
        note=note,
    )


def trust_statement(
    origin: str, user: str, job: Mapping[str, Any], *, any_params: bool
) -> TrustStatement:
    """The statement for trusting ``job``'s code on its dataset for its researcher."""
    return TrustStatement(
        origin=origin,
        user=user,
        dataset=job["dataset"],
        code_digest=job["code_digest"],
        researcher=job["researcher"],
        params_digest=None if any_params else job["params_digest"],
    )


def release_statement(
    origin: str, user: str, job_id: str, outputs: Iterable[Mapping[str, Any]]
) -> ReleaseStatement:
    """The statement for releasing ``outputs`` (``{"name", "sha256"}`` each, as the outcome
    lists them) of job ``job_id``."""
    held = sorted(
        (ReleasedOutput(name=o["name"], digest=o["sha256"]) for o in outputs),
        key=lambda o: o.name,
    )
    return ReleaseStatement(origin=origin, user=user, job=job_id, outputs=held)


def publish_statement(
    origin: str,
    user: str,
    dataset: str,
    host_statement: Mapping[str, Any],
    policy: Mapping[str, Any],
) -> PublishStatement:
    """The statement for publishing ``dataset`` as its data host attested it: ``host_statement``
    is the host's ``c2d.host.dataset/1`` statement (host and digest come from it) and
    ``policy`` the policy's public dump (``DatasetPolicy.public_dump``), each named by its
    canonical digest."""
    return PublishStatement(
        origin=origin,
        user=user,
        dataset=dataset,
        host=str(host_statement.get("host")),
        digest=str(host_statement.get("digest")),
        host_statement=canonical_digest(dict(host_statement)),
        policy=canonical_digest(dict(policy)),
    )


def envelope_of(data: Mapping[str, Any] | None) -> SignedEnvelope | None:
    """The envelope in a request, or None; ``InvalidRequest`` if it is not one."""
    if data is None:
        return None
    try:
        return SignedEnvelope.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(
            "`signed` must be {statement, signature, key} as the c2d client makes it "
            f"({exc.error_count()} problem(s)); send the action unsigned, or sign it again"
        ) from None


def check_signed(
    keys: KeyRecords,
    size: int,
    expected: ActionStatement,
    envelope: SignedEnvelope,
) -> dict[str, Any]:
    """The envelope as the ledger entry keeps it, once it is shown to be ``expected.user``'s
    signature over exactly ``expected``, by a key of theirs valid at log size ``size`` (the
    sequence number the entry will get).

    Raises ``InvalidRequest`` (422) naming the first field that differs, and ``NotAllowed``
    (403) for a key that is unknown, another's, revoked, or whose signature does not verify.
    """
    fingerprint = envelope.key
    wanted = expected.model_dump(mode="json")
    signed = envelope.statement
    for field in sorted(set(wanted) | set(signed)):
        if field not in signed or field not in wanted or signed[field] != wanted[field]:
            raise InvalidRequest(
                f"the statement signed by key {fingerprint} does not match this action: its "
                f"{field!r} is {_show(signed.get(field))}, here it is "
                f"{_show(wanted.get(field))}; nothing was recorded. Sign the statement for "
                "this very action (the c2d client builds it from what the server shows)"
            )
    key = keys.user_key_at(expected.user, fingerprint, size)
    if key is None:
        raise NotAllowed(
            f"key {fingerprint} is not a registered, unrevoked key of {expected.user}; "
            "nothing was recorded. `c2d key list` shows your keys; `c2d login` registers a "
            "new one"
        )
    if not verify_statement(key.public_key, wanted, envelope.signature):
        raise NotAllowed(
            f"the signature does not verify with key {fingerprint} over the {expected.type} "
            "statement; nothing was recorded. Sign again with the key file `c2d login` made"
        )
    return envelope.model_dump(mode="json")


def check_unsigned(keys: KeyRecords, policy: SignaturePolicy, user: str, size: int) -> None:
    """Refuse (``NotAllowed``, 403) an unsigned action by ``user`` at log size ``size`` unless
    ``policy`` takes it: ``keyholders`` and ``user`` holds no key valid then."""
    held = [k.fingerprint for k in keys.user_keys(user) if k.valid_at(size)]
    if held:
        raise NotAllowed(
            f"{user} has a registered signing key ({held[-1]}), so their actions must be "
            "signed with it, and this one was not; nothing was recorded. The c2d CLI, the "
            "Python client and the web pages sign; a token alone cannot act"
        )
    if policy is SignaturePolicy.REQUIRED:
        raise NotAllowed(
            f"this server records only signed actions, and {user} has no signing key yet; "
            "nothing was recorded. `c2d login URL --with-token` makes your key on your machine "
            "and registers it (the web pages make one for your browser when you sign in)"
        )


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
