"""Fetching a released job's outputs and proving they are what the ledger recorded.

``fetch_verified`` is what ``c2d fetch`` runs, and what a Python caller gets from the library:
nothing reaches a final file name until every check has passed. Its steps, in order:

1. The job is released (a failed, rejected or cancelled job has no outputs; any other state
   has none yet): ``NotReady`` otherwise.
2. The log's key: the one the caller holds (given, or pinned at login) must be the one the
   server serves; without one, the served key is used and the result says so (``key="served"``:
   that proves nothing against the server itself).
3. The receipt verifies offline against that key and the log's origin (a ``c2d-receipt/2``
   also every actor's signature, against the key entries it carries); with a folder of
   kept checkpoints (``KeptCheckpoints``), its checkpoint must extend the one kept from this
   server's last fetch (an RFC 9162 consistency proof, ``advance_kept``) and is kept instead.
4. The three records of the outputs agree: the outcome the server reports hashes to the outputs
   digest of the receipt's ``job.finished`` entry, and the artifact list names the same files
   with the same digests (``agreed_outputs``).
5. The outcome's metrics hash to the metrics digest that entry recorded (``check_metrics``).
6. Each artifact downloads to a hidden part file, must hash to its agreed digest, and only then
   is renamed into place; the receipt is saved last, byte for byte as the server sent it, so it
   can be verified again later.

Any failure raises ``IntegrityError`` (or ``NotReady``) saying which record disagreed; nothing
half-written is left under a final name, and a log that no longer extends the kept checkpoint
leaves that checkpoint as it was.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from jobs.digests import canonical_digest, outputs_digest
from jobs.safe_text import one_line
from ledger import LedgerError, verify_receipt
from runner.client.api import Client
from runner.client.consistency import KeptCheckpoints, advance_kept
from runner.client.download import Downloaded, DownloadObserver, hex_digest, save_atomic
from runner.client.ledger_check import finished_body, finished_outputs_digest
from runner.errors import IntegrityError, NotReady

METRICS = "metrics.json"
RECEIPT = "receipt.json"
ENDED_WITHOUT_OUTPUTS = frozenset({"failed", "rejected", "cancelled"})

KeySource = Literal["given", "pinned", "served"]
"""Where the key the receipt was checked against came from; only "given" and "pinned" are keys
the caller holds."""


@dataclass(frozen=True)
class Fetched:
    """What ``fetch_verified`` saved, all of it checked."""

    job_id: str
    folder: Path
    files: tuple[Downloaded, ...]
    metrics: dict[str, float] | None
    receipt: Path
    log_size: int
    key: KeySource
    job: dict[str, Any] = field(repr=False)
    kept_size: int | None = None  # the size of the checkpoint kept before, which the log extends


def _digest_map(rows: list[dict[str, Any]]) -> dict[str, str]:
    return {r["name"]: hex_digest(r["sha256"]) for r in rows}


def agreed_outputs(
    job_id: str, outcome: list[dict[str, Any]], listed: list[dict[str, Any]], recorded: str
) -> dict[str, str]:
    """The output digests (name -> hex) if all three records agree; else IntegrityError.

    The job's outcome (names, digests, sizes) must hash to the outputs digest the receipt's
    ``job.finished`` recorded, and the artifact list must name the same files and digests.
    """
    try:
        digest = outputs_digest(outcome)
    except (KeyError, TypeError) as exc:
        raise IntegrityError(
            f"job {job_id}: the server's outcome does not list outputs with names, digests and "
            "sizes; nothing was saved; tell the operator"
        ) from exc
    if digest != recorded:
        raise IntegrityError(
            f"job {job_id}: the outputs the server lists do not hash to the outputs digest in "
            f"the receipt's job.finished ({recorded}); nothing was saved; tell the operator"
        )
    expected, other = _digest_map(outcome), _digest_map(listed)
    if other != expected:
        names = sorted(n for n in expected.keys() | other.keys() if expected.get(n) != other.get(n))
        raise IntegrityError(
            f"job {job_id}: the artifact list disagrees with the job's outcome about "
            f"{', '.join(names)}; nothing was saved; tell the operator"
        )
    return expected


def check_metrics(job_id: str, metrics: Any, finished: dict[str, Any]) -> None:
    """The outcome's metrics must hash to the `metrics_digest` the ledger recorded."""
    recorded = finished.get("metrics_digest")
    if recorded is None:
        return
    # A job that left no metrics file has no metrics (None here, {} in the ledger).
    if canonical_digest(metrics or {}) != recorded:
        raise IntegrityError(
            f"job {job_id}: the metrics the server reports do not hash to the metrics digest "
            f"in the receipt ({recorded}); nothing was saved; tell the operator"
        )


def trusted_key(client: Client, pinned: bytes | None) -> tuple[bytes, str | None]:
    """The key to check receipts with (``pinned`` if it is the one served) and the origin."""
    served = client.public_key()
    key = base64.b64decode(served["public_key"])
    if pinned is not None and pinned != key:
        raise IntegrityError(
            f"the server serves ledger key {served['public_key']}, not the key you pinned; "
            "nothing was saved; ask the operator before trusting this server"
        )
    return key, served.get("origin")


def _released(job_id: str, job: dict[str, Any]) -> None:
    if job["state"] in ENDED_WITHOUT_OUTPUTS:
        reason = f" ({one_line(job['reason'])})" if job.get("reason") else ""
        raise NotReady(
            f"job {job_id} is {job['state']}{reason}: it has no outputs to fetch; "
            f"`c2d logs {job_id}` may say why"
        )
    if job["state"] != "released":
        raise NotReady(
            f"job {job_id} is {job['state']}; outputs can be fetched once it is released "
            f"(see `c2d status {job_id}`)"
        )


def fetch_verified(
    client: Client,
    job_id: str,
    folder: Path,
    *,
    key: bytes | None = None,
    key_source: KeySource = "given",
    observer: DownloadObserver | None = None,
    kept: KeptCheckpoints | None = None,
) -> Fetched:
    """Download job ``job_id``'s released outputs and receipt into ``folder``, all verified.

    ``key`` is the log's public key the caller holds (``key_source`` says whether it was given
    or pinned at login); without one the served key is used and ``Fetched.key`` is "served".
    ``kept`` is where the last checkpoint seen of each server is kept (the CLI and
    ``connect()`` keep it beside the client config); without it no consistency is checked.
    See the module docstring for the steps. Raises ``NotReady`` or ``IntegrityError``.
    """
    job = client.job(job_id)
    _released(job_id, job)  # 1
    public_key, origin = trusted_key(client, key)  # 2
    receipt_bytes = client.receipt_bytes(job_id)
    try:  # 3
        document = json.loads(receipt_bytes)
        check = verify_receipt(document, public_key, origin=origin)
    except (ValueError, LedgerError) as exc:
        raise IntegrityError(
            f"the receipt of job {job_id} does not verify: {exc}; nothing was saved"
        ) from exc
    extends = None
    if kept is not None:
        extends = advance_kept(client, kept, public_key, check.origin, document["checkpoint"])
    outcome = job.get("outcome") or {}
    outputs = agreed_outputs(  # 4
        job_id,
        outcome.get("outputs") or [],
        client.artifacts(job_id),
        finished_outputs_digest(check, job_id),
    )
    check_metrics(job_id, outcome.get("metrics"), finished_body(check, job_id))  # 5
    folder.mkdir(parents=True, exist_ok=True)
    files = [  # 6
        client.download_artifact(
            job_id, name, folder, expected_sha256=outputs[name], observer=observer
        )
        for name in sorted(outputs)
    ]
    save_atomic(folder / RECEIPT, receipt_bytes)
    metrics = outcome.get("metrics")
    if METRICS in outputs:
        metrics = json.loads((folder / METRICS).read_bytes())
    return Fetched(
        job_id=job_id,
        folder=folder,
        files=tuple(files),
        metrics=metrics,
        receipt=folder / RECEIPT,
        log_size=check.size,
        key=key_source if key is not None else "served",
        job=job,
        kept_size=extends.kept_size if extends is not None else None,
    )
