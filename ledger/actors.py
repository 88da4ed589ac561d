"""Who did what: checking the signatures of people and data hosts carried inside entries.

The log's own key proves only that the operator wrote an entry. An entry that records a
person's action can also carry that person's word, the *signed envelope* in its body::

    "signed": {"statement": {...}, "signature": "<base64>", "key": "<fingerprint>"}

and a run's ``job.finished`` carries its data host's (``host``, ``host_key``,
``host_signature`` over ``c2d.host.outcome/1``). This module checks both against the key
entries of the same log, so someone who holds the operator's key and database but not the
person's key cannot forge an action. It is generic over what the statements say: it knows
which statement type goes with which entry type, and which statement fields must name the
entry's actor, subject and origin (and, for a dataset's publication, the digests its body
records); the rest of a statement is the signer's business.

A ``dataset.registered`` entry is its publisher's action (``c2d/publish``): whoever registered
it, the owner or an admin for her, signed the host, the digest, the host's statement digest
and the policy digest the entry records; unsigned, it is the operator's word only.

Key rules (by sequence number, so "earlier" means earlier in the log):

- a person's key counts for an entry when a ``user.key`` of that user with that fingerprint
  comes before it and no ``user.key_revoked`` of that fingerprint comes before it;
- a host's key counts when it is the key of the host's latest ``host.enrolled`` before it
  (re-enrolling replaces the key);
- a submit statement's ``nonce`` is used once per user, so a replayed submit shows.

Feed entries in sequence order to :class:`ActorCheck`; it needs the key entries the actions
rely on before the actions themselves, which a whole log and a ``c2d-receipt/2`` both hold.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, Protocol

from pydantic import BaseModel, ConfigDict

from ledger import canonical
from ledger.statements import fingerprint, verify_statement

KEY_TYPES = frozenset(("user.key", "user.key_revoked", "host.enrolled"))
"""Entry types that register or revoke the keys actions are signed with."""

HOST_OUTCOME = "c2d.host.outcome/1"
_FP = re.compile(r"^ed25519:[0-9a-f]{32}$")


@dataclass(frozen=True)
class _Action:
    """How a person's statement binds to the entry it is recorded in."""

    statement: str
    job: bool = False  # the statement's ``job`` must be the entry's subject
    subject_field: str | None = None  # or this field, with ``subject_prefix``, must be
    subject_prefix: str = ""
    decision: str | None = None
    # (statement field, body field, hashed): the statement field must equal the body field's
    # value, or with ``hashed`` its canonical digest
    body: tuple[tuple[str, str, bool], ...] = ()


ACTIONS: Mapping[str, _Action] = {
    "job.submitted": _Action("c2d/submit"),
    "job.approved": _Action("c2d/decision", job=True, decision="approve"),
    "job.rejected": _Action("c2d/decision", job=True, decision="reject"),
    "dataset.trusted": _Action("c2d/trust", subject_field="dataset", subject_prefix="dataset:"),
    "job.released": _Action("c2d/release", job=True),
    "dataset.registered": _Action(
        "c2d/publish",
        subject_field="dataset",
        subject_prefix="dataset:",
        body=(
            ("host", "host", False),
            ("digest", "digest", False),
            ("host_statement", "host_statement_digest", False),
            ("policy", "policy", True),
        ),
    ),
}
"""Entry types that record a person's action, and the statement each must carry."""

WATCHED = KEY_TYPES | set(ACTIONS) | {"job.finished"}
"""Every entry type :class:`ActorCheck` looks at; it ignores the others."""

Verdict = Literal["signed", "unsigned", "policy", "bad"]


class Recorded(Protocol):
    """The parts of an entry the check reads (an ``Entry``, or a row the scan parsed)."""

    @property
    def seq(self) -> int: ...
    @property
    def type(self) -> str: ...
    @property
    def actor(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def body(self) -> dict[str, Any]: ...


class Row(NamedTuple):
    """An entry as the whole-log scan holds it, without building an ``Entry``."""

    seq: int
    type: str
    actor: str
    subject: str
    body: dict[str, Any]


class ActionCheck(BaseModel):
    """What one action entry proves about who acted.

    ``signed``: ``signer`` (a user, or ``host:NAME``) signed it with key ``key``;
    ``unsigned``: it carries no signature, so it is the operator's word only; ``policy``: the
    server acted by a rule the owner set (an approval or release ``by_policy``); ``bad``: it
    carries a signature that does not hold, and ``detail`` says why.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int
    type: str
    subject: str
    verdict: Verdict
    signer: str
    key: str | None = None
    detail: str = ""


@dataclass
class _Key:
    owner: str
    public_key: bytes
    registered: int
    revoked: int | None = None


class ActorCheck:
    """Checks action entries against the key entries seen before them (see module doc)."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self._people: dict[str, _Key] = {}
        self._hosts: dict[str, tuple[str, bytes, int]] = {}  # host -> (fingerprint, key, seq)
        self._nonces: dict[tuple[str, str], int] = {}

    def feed(self, entry: Recorded) -> ActionCheck | None:
        """Take the next entry (in seq order); return its check if it is an action."""
        if entry.type in KEY_TYPES:
            self._learn(entry)
            return None
        if entry.type == "job.finished" and "host_signature" in entry.body:
            return self._host_outcome(entry)
        action = ACTIONS.get(entry.type)
        if action is None:
            return None
        return self._action(entry, action)

    def feed_all(self, entries: Iterable[Recorded]) -> list[ActionCheck]:
        """Every action's check, for entries given in seq order."""
        return [c for c in map(self.feed, entries) if c is not None]

    # -- keys ------------------------------------------------------------------------

    def _learn(self, entry: Recorded) -> None:
        body = entry.body
        fp = body.get("fingerprint")
        if not isinstance(fp, str):
            return
        if entry.type == "user.key_revoked":
            known = self._people.get(fp)
            if known is not None and known.revoked is None:
                known.revoked = entry.seq
            return
        raw = public_key_bytes(body.get("public_key"))
        if raw is None or fingerprint(raw) != fp:
            return  # a key entry whose fingerprint is not its key's vouches for nothing
        if entry.type == "host.enrolled":
            self._hosts[entry.actor.removeprefix("host:")] = (fp, raw, entry.seq)
        elif fp not in self._people:
            self._people[fp] = _Key(owner=entry.actor, public_key=raw, registered=entry.seq)

    # -- actions ---------------------------------------------------------------------

    def _action(self, entry: Recorded, action: _Action) -> ActionCheck:
        signed = entry.body.get("signed")
        if signed is None:
            verdict: Verdict = "policy" if entry.body.get("by_policy") is True else "unsigned"
            return _check(entry, verdict, entry.actor)
        problem, key = self._person(entry, action, signed)
        if problem:
            return _check(
                entry, "bad", entry.actor, key, f"entry {entry.seq} ({entry.type}): {problem}"
            )
        return _check(entry, "signed", entry.actor, key)

    def _person(self, entry: Recorded, action: _Action, signed: Any) -> tuple[str, str | None]:
        if not isinstance(signed, dict) or set(signed) != {"statement", "signature", "key"}:
            return "its signed envelope is not {statement, signature, key}", None
        statement, signature, fp = signed["statement"], signed["signature"], signed["key"]
        if not isinstance(statement, dict) or not isinstance(fp, str) or not _FP.match(fp):
            return "its signed envelope is malformed (statement, or key fingerprint)", None
        expected = {"type": action.statement, "version": 1, "user": entry.actor}
        expected["origin"] = self.origin
        if action.job:
            expected["job"] = entry.subject
        if action.decision:
            expected["decision"] = action.decision
        for field, want in expected.items():
            if statement.get(field) != want:
                return (
                    f"its statement's {field} is {_short(statement.get(field))}, but the entry "
                    f"needs {_short(want)}: the signature was made for something else",
                    fp,
                )
        if action.subject_field is not None:
            named = statement.get(action.subject_field)
            if not isinstance(named, str) or entry.subject != action.subject_prefix + named:
                return f"its statement is about {_short(named)}, not {_short(entry.subject)}", fp
        for field, recorded, hashed in action.body:
            want = entry.body.get(recorded)
            if hashed:
                want = canonical_digest(want)
            if statement.get(field) != want:
                return (
                    f"its statement's {field} is {_short(statement.get(field))}, but the entry "
                    f"records {_short(want)}: the signature was made for something else",
                    fp,
                )
        key = self._people.get(fp)
        if key is None or key.registered >= entry.seq:
            return f"key {fp} is not registered before this entry", fp
        if key.owner != entry.actor:
            return f"key {fp} is {key.owner}'s, not {entry.actor}'s", fp
        if key.revoked is not None and key.revoked < entry.seq:
            return f"key {fp} was revoked at entry {key.revoked}, before this entry", fp
        if not isinstance(signature, str) or not verify_statement(
            key.public_key, statement, signature
        ):
            return f"the signature is not key {fp}'s over its statement", fp
        if action.statement == "c2d/submit":
            nonce = (entry.actor, str(statement.get("nonce")))
            first = self._nonces.setdefault(nonce, entry.seq)
            if first != entry.seq:
                return f"its submit statement was used before, at entry {first} (a replay)", fp
        return "", fp

    def _host_outcome(self, entry: Recorded) -> ActionCheck:
        body = entry.body
        host, fp = body.get("host"), body.get("host_key")
        if not isinstance(host, str) or not isinstance(fp, str) or not _FP.match(fp):
            return _bad(entry, "host:?", None, "its host or host key is malformed")
        signer = f"host:{host}"
        enrolled = self._hosts.get(str(host))
        if enrolled is None or enrolled[2] >= entry.seq:
            return _bad(entry, signer, fp, f"host {_short(host)} is not enrolled before this entry")
        if enrolled[0] != fp:
            return _bad(entry, signer, fp, f"key {fp} is not host {_short(host)}'s enrolled key")
        statement = {
            "type": HOST_OUTCOME,
            "host": host,
            "job": entry.subject,
            "fence": body.get("fence"),
            "outcome_digest": body.get("outcome_digest"),
        }
        signature = body.get("host_signature")
        if not isinstance(signature, str) or not verify_statement(
            enrolled[1], statement, signature
        ):
            return _bad(entry, signer, fp, f"the signature is not key {fp}'s over the outcome")
        return _check(entry, "signed", signer, fp)


def _check(
    entry: Recorded, verdict: Verdict, signer: str, key: object = None, detail: str = ""
) -> ActionCheck:
    return ActionCheck(
        seq=entry.seq,
        type=entry.type,
        subject=entry.subject,
        verdict=verdict,
        signer=signer,
        key=key if isinstance(key, str) else None,
        detail=detail,
    )


def _bad(entry: Recorded, signer: str, key: object, why: str) -> ActionCheck:
    return _check(entry, "bad", signer, key, f"entry {entry.seq} ({entry.type}): {why}")


def _short(value: object, limit: int = 80) -> str:
    """A value from the log as a message quotes it: its repr, cut to ``limit`` characters
    (whoever wrote the entry chose it, and a message must stay readable)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def canonical_digest(value: Any) -> str:
    """``sha256:`` and the hex sha256 of ``value``'s RFC 8785 canonical JSON (as
    ``jobs.digests`` names a policy; this package imports nothing else of c2d)."""
    return "sha256:" + hashlib.sha256(canonical.dumps(value)).hexdigest()


def public_key_bytes(text: object) -> bytes | None:
    """The 32 raw bytes of a key entry's base64 ``public_key``, or None if it is not one."""
    if not isinstance(text, str):
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 32 else None


def first_bad(checks: Iterable[ActionCheck]) -> ActionCheck | None:
    """The first check whose signature does not hold, if any."""
    return next((c for c in checks if c.verdict == "bad"), None)


def summary(counts: Mapping[str, int]) -> str:
    """``N actions signed, M unsigned`` (and how many the server took by policy), from the
    number of checks per verdict."""
    text = f"{counts.get('signed', 0)} actions signed, {counts.get('unsigned', 0)} unsigned"
    if counts.get("policy"):
        text += f", {counts['policy']} by policy"
    return text
