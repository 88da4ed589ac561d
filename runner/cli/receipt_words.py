"""Who did what, in words, from a verified receipt's action checks (``ledger.actors``).

"submitted by bob (key ab12cd34…), approved by alice (key cd34ef56…), ran on host h1 (key
ef56…), released by alice (key cd34ef56…)", and, when the receipt carries the registration of
the job's data, "on dataset d1 (digest sha256:ab12cd34ef56…) published by alice (key
cd34ef56…) on host h1 (key ef56…)". Names come from the log, where a user or host
name is whatever the operator's database held, so they are escaped before a terminal shows
them; ``--json`` carries them as they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from jobs.safe_text import one_line
from ledger.actors import ActionCheck
from ledger.publication import REGISTERED, Publication

VERBS = {
    "job.submitted": "submitted by",
    "job.approved": "approved by",
    "job.rejected": "rejected by",
    "dataset.trusted": "trusted by",
    "job.finished": "ran on",
    "job.released": "released by",
    REGISTERED: "published by",
}

UNSIGNED = "(unsigned: the operator's word)"
NOT_COVERED = "the dataset's publication is not covered by this receipt"


def short_key(fingerprint: str) -> str:
    """A fingerprint as people compare it at a glance: its first 8 hex digits and an ellipsis."""
    return fingerprint.removeprefix("ed25519:")[:8] + "…"


def phrase(check: ActionCheck) -> str:
    """One action: "approved by alice (key cd34ef56…)", or marked unsigned or by policy."""
    signer = check.signer
    if check.type == "job.finished":
        signer = "host " + signer.removeprefix("host:")
    words = f"{VERBS.get(check.type, check.type)} {one_line(signer)}"
    if check.verdict == "signed" and check.key:
        return f"{words} (key {one_line(short_key(check.key))})"
    if check.verdict == "policy":
        return f"{words.split(' by ')[0]} by policy"
    return f"{words} {UNSIGNED}"


def sentence(checks: Iterable[ActionCheck]) -> str:
    """Every action of a receipt about its subject, in log order, joined in one line (the
    publication of its data is :func:`published`'s)."""
    return ", ".join(phrase(c) for c in checks if c.type != REGISTERED)


def short_digest(digest: str) -> str:
    """A digest at a glance: ``sha256:`` and its first 12 hex digits, and an ellipsis."""
    kind, _, hex_digits = digest.partition(":")
    return f"{kind}:{hex_digits[:12]}…" if hex_digits else digest


def published(publication: Publication | None, checks: Iterable[ActionCheck]) -> str:
    """ "on dataset d1 (digest sha256:ab12…) published by alice (key cd34…) on host h1 (key
    ef56…)", or :data:`NOT_COVERED` for a receipt without the registration."""
    if publication is None:
        return NOT_COVERED
    found = [c for c in checks if c.seq == publication.seq]
    by = phrase(found[0]) if found else f"published by {one_line(publication.publisher)}"
    host = f"host {one_line(publication.host)} (key {one_line(short_key(publication.host_key))}"
    if not publication.host_checked:
        host += ", its signature not checked: the entry predates recording the profile digest"
    return (
        f"on dataset {one_line(publication.dataset)} (digest "
        f"{one_line(short_digest(publication.digest))}) {by} on {host})"
    )


def facts(checks: Iterable[ActionCheck]) -> list[dict[str, Any]]:
    """The same facts for ``--json``: per action its entry, verdict, signer and key."""
    return [c.model_dump(exclude={"detail"}) for c in checks]


def publication_facts(
    publication: Publication | None, checks: Iterable[ActionCheck]
) -> dict[str, Any] | None:
    """The publication for ``--json``: its entry, dataset, digest, the publisher's verdict
    and key, the host and its key and whether the host's signature was checked; None when
    the receipt does not carry it."""
    if publication is None:
        return None
    found = [c for c in checks if c.seq == publication.seq]
    return {
        **publication._asdict(),
        "verdict": found[0].verdict if found else None,
        "key": found[0].key if found else None,
    }
