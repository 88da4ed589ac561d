"""Who did what, in words, from a verified receipt's action checks (``ledger.actors``).

"submitted by bob (key ab12cd34…), approved by alice (key cd34ef56…), ran on host h1 (key
ef56…), released by alice (key cd34ef56…)". Names come from the log, where a user or host
name is whatever the operator's database held, so they are escaped before a terminal shows
them; ``--json`` carries them as they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from jobs.safe_text import one_line
from ledger.actors import ActionCheck

VERBS = {
    "job.submitted": "submitted by",
    "job.approved": "approved by",
    "job.rejected": "rejected by",
    "dataset.trusted": "trusted by",
    "job.finished": "ran on",
    "job.released": "released by",
}

UNSIGNED = "(unsigned: the operator's word)"


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
    """Every action of a receipt, in log order, joined in one line."""
    return ", ".join(phrase(c) for c in checks)


def facts(checks: Iterable[ActionCheck]) -> list[dict[str, Any]]:
    """The same facts for ``--json``: per action its entry, verdict, signer and key."""
    return [c.model_dump(exclude={"detail"}) for c in checks]
