"""Checking a ledger the client downloaded: the whole log, or a public key a person holds.

`ledger.verify_log` checks a database file; a client that talks to the API instead holds the
entries' canonical bytes, the signed checkpoints and the public key. `verify_downloaded_log`
checks those with the ledger's own pieces (canonical entry parsing, RFC 9162 hashing, signed
checkpoint opening) and returns the same `VerifyReport`, so `c2d ledger verify` prints one
shape whichever way the log arrived.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jobs.digests import is_digest
from ledger.actors import ActionCheck, ActorCheck, summary
from ledger.checkpoint import open_checkpoint
from ledger.entry import GENESIS_PREV, Entry
from ledger.errors import LedgerError
from ledger.keys import PUBLIC_KEY_SIZE, parse_public_key
from ledger.merkle import EMPTY_ROOT, Frontier, leaf_hash
from ledger.receipt import ReceiptCheck
from ledger.verify import VerifyReport
from runner.errors import ClientConfigError, IntegrityError, MissingFile

FINISHED = "job.finished"


def read_public_key(path: Path) -> bytes:
    """The 32 raw bytes of the Ed25519 key in `path`.

    Accepts what people are handed: base64 of the raw key (the ledger's `.pub` file), the raw
    32 bytes, a PEM public key, or the JSON the API serves at /v1/ledger/public-key.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise MissingFile(f"there is no key file {path}; pass the log's public key file") from exc
    except OSError as exc:
        raise ClientConfigError(f"cannot read the key file {path}: {exc}") from exc
    stripped = data.strip()
    # 32 raw bytes are the key itself, whatever they look like (one in 256 starts with "{").
    if len(data) != PUBLIC_KEY_SIZE and stripped.startswith(b"{"):
        try:
            data = str(json.loads(stripped)["public_key"]).encode()
        except (ValueError, KeyError, TypeError) as exc:
            raise ClientConfigError(
                f'{path} is JSON but has no "public_key" field; pass the key\'s base64 text'
            ) from exc
    try:
        return parse_public_key(data)
    except LedgerError as exc:
        raise ClientConfigError(f"{path}: {exc}") from exc


class _Problem(Exception):
    def __init__(self, seq: int | None, detail: str) -> None:
        super().__init__(detail)
        self.seq = seq


def verify_downloaded_log(
    entries: Sequence[bytes],
    checkpoints: Sequence[str],
    public_key: bytes,
    origin: str | None = None,
) -> VerifyReport:
    """Verify a log given as its entries' canonical bytes plus every checkpoint it signed.

    Steps: (1) open every checkpoint with `public_key` (and `origin`, when given); a bad one
    ends the check; (2) for each entry in order: it parses as an entry whose bytes are exactly
    its RFC 8785 form, names its own position as seq and the previous entry's hash as prev; its
    leaf extends the Merkle tree; an action's signature holds against the key entries before
    it (``ledger.actors``); (3) wherever a checkpoint's size is reached, the tree's root
    must equal the signed root, or the first entry after the last matching checkpoint is named
    as bad; (4) a checkpoint larger than the log means entries were removed.
    """
    expected: dict[int, list[bytes]] = {}
    signed_origin = origin
    for number, note in enumerate(checkpoints):
        try:
            checkpoint = open_checkpoint(note, public_key, origin)
        except LedgerError as exc:
            return VerifyReport(
                ok=False,
                entries=len(entries),
                detail=f"checkpoint {number} cannot be trusted: {exc}",
            )
        expected.setdefault(checkpoint.size, []).append(checkpoint.root)
        signed_origin = signed_origin or checkpoint.origin
    frontier = Frontier()
    actors = ActorCheck(signed_origin or "")
    try:
        checks = _scan(entries, frontier, expected, actors)
    except _Problem as problem:
        return VerifyReport(
            ok=False, entries=len(entries), first_bad=problem.seq, detail=str(problem)
        )
    root = frontier.root() if entries else EMPTY_ROOT
    counts: Counter[str] = Counter(c.verdict for c in checks)
    return VerifyReport(
        ok=True,
        entries=len(entries),
        detail=f"{len(entries)} entries and {len(checkpoints)} checkpoints verify: every "
        f"entry's encoding, seq and link, the Merkle tree and every signature; {summary(counts)}",
        checkpoints=len(checkpoints),
        root=root.hex(),
        signed=counts["signed"],
        unsigned=counts["unsigned"],
    )


def _scan(
    entries: Sequence[bytes],
    frontier: Frontier,
    expected: dict[int, list[bytes]],
    actors: ActorCheck,
) -> list[ActionCheck]:
    checks: list[ActionCheck] = []
    last_good = 0
    if 0 in expected and any(root != EMPTY_ROOT for root in expected[0]):
        raise _Problem(0, "a checkpoint of the empty log has a root that is not the empty root")
    prev = GENESIS_PREV
    for position, data in enumerate(entries):
        try:
            entry = Entry.from_canonical(data)
        except LedgerError as exc:
            raise _Problem(position, f"entry {position} is malformed: {exc}") from exc
        if entry.seq != position:
            raise _Problem(
                position,
                f"the entry at position {position} says it is seq {entry.seq}: it was moved, "
                "reordered or replayed",
            )
        if entry.prev != prev:
            raise _Problem(
                position,
                f"entry {position} names {entry.prev} as the previous hash, but the entry "
                f"before it hashes to {prev}: the chain is broken here",
            )
        prev = hashlib.sha256(data).hexdigest()
        check = actors.feed(entry)
        if check is not None:
            if check.verdict == "bad":
                raise _Problem(
                    position, f"{check.detail}; the log holds an action its actor did not sign"
                )
            checks.append(check)
        frontier.append(leaf_hash(data))
        size = position + 1
        for signed in expected.get(size, []):
            if signed != frontier.root():
                raise _Problem(
                    last_good,
                    f"the checkpoint at size {size} does not match the log (signed root "
                    f"{signed.hex()}, entries give {frontier.root().hex()}): an entry in "
                    f"{last_good}..{size - 1} differs from what was signed, or the log forked",
                )
        if size in expected:
            last_good = size
    beyond = [s for s in expected if s > len(entries)]
    if beyond:
        raise _Problem(
            len(entries),
            f"a signed checkpoint covers {max(beyond)} entries but the server sent "
            f"{len(entries)}: entries {len(entries)}..{max(beyond) - 1} were removed",
        )
    return checks


def finished_body(check: ReceiptCheck, job_id: str) -> dict[str, Any]:
    """The body of the receipt's one `job.finished` entry.

    Raises IntegrityError when the receipt is about another job, or holds no (or more than
    one) `job.finished` entry.
    """
    if check.subject != job_id:
        raise IntegrityError(
            f"the receipt is about {check.subject!r}, not job {job_id}; nothing was saved"
        )
    finished = [e for e in check.entries if e.type == FINISHED]
    if len(finished) != 1:
        raise IntegrityError(
            f"the receipt of job {job_id} holds {len(finished)} {FINISHED} entries, not one; "
            "nothing was saved"
        )
    return dict(finished[0].body)


def finished_outputs_digest(check: ReceiptCheck, job_id: str) -> str:
    """The outputs digest (``jobs.digests.outputs_digest``) the receipt's `job.finished` records."""
    recorded = finished_body(check, job_id).get("outputs_digest")
    if not isinstance(recorded, str) or not is_digest(recorded):
        raise IntegrityError(
            f"the {FINISHED} entry of job {job_id} records no outputs digest; nothing was saved"
        )
    return recorded
