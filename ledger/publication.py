"""The publication a job's receipt rests on: the ``dataset.registered`` entry of its data.

A job's entries say which dataset it ran on and bind that dataset's digest (``job.submitted``
records it; the approval binds it, and a signed approval is the owner's word on it). They do
not say who published that digest or where it lives. A ``c2d-receipt/2`` may therefore carry,
as ``dataset``, the ``dataset.registered`` entry that registered that very digest before the
job was submitted: the newest such entry for the dataset's name. Its ``signed`` envelope is
its publisher's ``c2d/publish`` statement (checked with the other actions, ``ledger.actors``),
and it names the data host that attested the digest, with that host's key and signature.

:func:`publication_of` picks the entry from a log; :func:`check_publication` is the verifier's
step: the entry must be that dataset's registration, before the submit, of the digest every
entry of the job binds (a receipt whose entry names another digest fails, naming both), and
the host's signature must be its key's, enrolled before the entry. The host's statement
(``c2d.host.dataset/1``) is rebuilt from the entry: its host, the dataset's name, the
policy's owner, the digest, file count, size and ``profile_digest``; it must hash to the
entry's ``host_statement_digest``. Entries written before ``profile_digest`` was recorded
cannot be rebuilt, so their host signature is reported as not checked.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from ledger.actors import canonical_digest, public_key_bytes
from ledger.entry import Entry
from ledger.errors import VerificationError
from ledger.statements import fingerprint, verify_statement

REGISTERED = "dataset.registered"
SUBMITTED = "job.submitted"
HOST_DATASET = "c2d.host.dataset/1"


class Bound(NamedTuple):
    """What a job's entries bind about its data: the dataset's name, the seq of the submit,
    and each ``(where, digest)`` an entry names (for messages)."""

    dataset: str
    submitted: int
    digests: tuple[tuple[str, str], ...]


def bound_dataset(entries: Iterable[Entry]) -> Bound | None:
    """The dataset a job's entries name and the digests they bind (an approval that does not
    record one binds none), or None when they hold no ``job.submitted`` naming its dataset
    and digest (the receipt is not a job's)."""
    dataset: str | None = None
    submitted = -1
    digests: list[tuple[str, str]] = []
    for entry in entries:
        body = entry.body
        if entry.type == SUBMITTED and dataset is None:
            named, digest = body.get("dataset"), body.get("dataset_digest")
            if not isinstance(named, str) or not isinstance(digest, str):
                return None  # not a submit that names its data
            dataset, submitted = named, entry.seq
            digests.append((f"entry {entry.seq} ({SUBMITTED})", digest))
        elif entry.type == "job.approved":
            where = f"entry {entry.seq} (job.approved)"
            if "dataset_digest" in body:
                digests.append((where, str(body["dataset_digest"])))
            statement = _statement(body)
            if statement is not None:
                signed = str(statement.get("dataset_digest"))
                digests.append((where + "'s signed statement", signed))
    if dataset is None:
        return None
    return Bound(dataset, submitted, tuple(digests))


def publication_of(bound: Bound, registrations: Iterable[Entry]) -> Entry | None:
    """The newest of ``registrations`` (the dataset's ``dataset.registered`` entries, any
    order) that registered the digest the job binds, before the submit; None also when the
    job's entries disagree on the digest (no registration could pass the check)."""
    digest = bound.digests[0][1]
    if any(other != digest for _, other in bound.digests):
        return None
    found: Entry | None = None
    for entry in registrations:
        if (
            entry.type == REGISTERED
            and entry.subject == "dataset:" + bound.dataset
            and entry.seq < bound.submitted
            and entry.body.get("digest") == digest
            and (found is None or entry.seq > found.seq)
        ):
            found = entry
    return found


class Publication(NamedTuple):
    """A checked registration: entry ``seq`` registered ``dataset`` with ``digest``, acted by
    ``publisher`` (whose signature ``ledger.actors`` judges), attested by ``host`` with key
    ``host_key``; ``host_checked``: that host signature was verified (see module doc)."""

    seq: int
    dataset: str
    digest: str
    publisher: str
    host: str
    host_key: str
    host_checked: bool


def check_publication(entry: Entry, entries: Sequence[Entry], keys: Iterable[Entry]) -> Publication:
    """Check that ``entry`` (a receipt's ``dataset``) registered, before the job's submit, the
    dataset and the very digest the job's ``entries`` bind, as a host whose key is among
    ``keys`` (``host.enrolled`` entries) signed it; what it proves if so.

    Raises ``VerificationError`` naming what differs.
    """
    bound = bound_dataset(entries)
    if bound is None:
        raise VerificationError(
            f"the receipt carries a dataset entry ({entry.seq}) but no {SUBMITTED} entry: only "
            "a job's receipt names the publication of the data it ran on"
        )
    if entry.type != REGISTERED or entry.subject != "dataset:" + bound.dataset:
        raise VerificationError(
            f"the receipt's dataset entry {entry.seq} is a {entry.type} about "
            f"{entry.subject!r}, not the {REGISTERED} of dataset {bound.dataset!r} the job ran on",
            expected=f"dataset:{bound.dataset}",
            actual=entry.subject,
        )
    if entry.seq >= bound.submitted:
        raise VerificationError(
            f"the receipt's dataset entry {entry.seq} comes after the job's submit (entry "
            f"{bound.submitted}): it cannot be the registration the job ran on"
        )
    published = entry.body.get("digest")
    for where, digest in bound.digests:
        if digest != published:
            raise VerificationError(
                f"the receipt's dataset entry {entry.seq} registered dataset {bound.dataset!r} "
                f"with digest {published!r}, but {where} binds {digest!r}: it is not the "
                "publication of the data the job ran on",
                expected=digest,
                actual=published,
            )
    body = entry.body
    return Publication(
        seq=entry.seq,
        dataset=bound.dataset,
        digest=str(published),
        publisher=entry.actor,
        host=str(body.get("host")),
        host_key=str(body.get("host_key")),
        host_checked=_host_signed(entry, keys),
    )


def _host_signed(entry: Entry, keys: Iterable[Entry]) -> bool:
    """Whether the host's signature in ``entry`` was checked (False: it cannot be rebuilt);
    ``VerificationError`` when it can be and does not hold."""
    body = entry.body
    if "profile_digest" not in body:
        return False
    policy = body.get("policy")
    statement = {
        "type": HOST_DATASET,
        "host": body.get("host"),
        "name": entry.subject.removeprefix("dataset:"),
        "owner": policy.get("owner") if isinstance(policy, dict) else None,
        "digest": body.get("digest"),
        "files": body.get("files"),
        "bytes": body.get("bytes"),
        "profile_digest": body.get("profile_digest"),
    }
    where = f"the receipt's dataset entry {entry.seq}"
    if canonical_digest(statement) != body.get("host_statement_digest"):
        raise VerificationError(
            f"{where} does not hash to the host statement digest it records: its fields were "
            "changed after the host signed"
        )
    host = f"host:{body.get('host')}"
    enrolled = [k for k in keys if k.type == "host.enrolled" and k.actor == host]
    enrolled = [k for k in enrolled if k.seq < entry.seq]
    raw = public_key_bytes(enrolled[-1].body.get("public_key")) if enrolled else None
    if raw is None or fingerprint(raw) != body.get("host_key"):
        raise VerificationError(
            f"{where} names host key {body.get('host_key')!r}, which is not {host}'s enrolled "
            "key before it among the receipt's keys"
        )
    signature = body.get("host_signature")
    if not isinstance(signature, str) or not verify_statement(raw, statement, signature):
        raise VerificationError(
            f"{where}: the host's signature is not key {body.get('host_key')}'s over the "
            "dataset statement it records"
        )
    return True


def _statement(body: dict[str, Any]) -> dict[str, Any] | None:
    signed = body.get("signed")
    if isinstance(signed, dict) and isinstance(signed.get("statement"), dict):
        return dict(signed["statement"])
    return None
