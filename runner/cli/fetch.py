"""`c2d fetch`: download a released job's outputs and prove they are what the ledger recorded.

The order matters: nothing reaches a final file name until the receipt has been verified
offline against the log's key, the three records of the outputs agree (the job's outcome hashes
to the outputs digest of the receipt's `job.finished` entry, and the artifact list names the
same files) and the outcome's metrics hash to the digest that entry recorded. Then each artifact
downloads to a hidden part file, must hash to that agreed digest, and only then is renamed into
place; the receipt is saved last, byte for byte as the server sent it, so it can be verified
again later.

The receipt proves something against the operator only when checked against a key the
researcher holds independently: one given with ``--key`` or pinned by ``c2d login``. Without
either, fetch checks it against the key the server sent in the same breath, and says so
plainly: that catches a corrupted download, not a dishonest server.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from jobs.digests import canonical_digest, outputs_digest
from jobs.safe_text import one_line
from ledger import LedgerError, verify_receipt
from runner.cli.options import RESEARCHER
from runner.cli.output import JsonFlag, Output
from runner.cli.session import connect, connection
from runner.client import Client
from runner.client.download import Downloaded, hex_digest, save_atomic
from runner.client.ledger_check import finished_body, finished_outputs_digest, read_public_key
from runner.errors import IntegrityError, NotReady

METRICS = "metrics.json"
RECEIPT = "receipt.json"
app = typer.Typer()
ENDED_WITHOUT_OUTPUTS = frozenset({"failed", "rejected", "cancelled"})
UNPINNED = (
    "the receipt was checked only against the ledger key this server sent, which proves "
    "nothing if the server itself is not honest; pin the log's key once with "
    "`c2d login URL TOKEN --key FILE` (or pass --key FILE), FILE being the public key the "
    "operator publishes ($C2D_HOME/ledger.key.pub)"
)


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


def _trusted_key(client: Client, pinned: bytes | None) -> tuple[bytes, str | None]:
    served = client.public_key()
    key = base64.b64decode(served["public_key"])
    if pinned is not None and pinned != key:
        raise IntegrityError(
            f"the server serves ledger key {served['public_key']}, not the key you pinned; "
            "nothing was saved; ask the operator before trusting this server"
        )
    return key, served.get("origin")


@app.command(rich_help_panel=RESEARCHER)
def fetch(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(metavar="JOB", help="The job id.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Folder to save into (default: ./JOB).")
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option("--key", help="The log's public key to require (default: pinned at login)."),
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Download a released job's artifacts, metrics.json and receipt.json, all verified."""
    out = Output.start(json_out)
    folder = output or Path(job_id)
    conn = connection(ctx, out)
    pinned = read_public_key(key) if key else None
    trusted_by = "given with --key" if key else None
    if pinned is None and conn.public_key:
        pinned = base64.b64decode(conn.public_key)
        trusted_by = "pinned at login"
    with connect(ctx, out) as client:
        job = client.job(job_id)
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
        public_key, origin = _trusted_key(client, pinned)
        receipt_bytes = client.receipt_bytes(job_id)
        try:
            check = verify_receipt(json.loads(receipt_bytes), public_key, origin=origin)
        except (ValueError, LedgerError) as exc:
            raise IntegrityError(
                f"the receipt of job {job_id} does not verify: {exc}; nothing was saved"
            ) from exc
        outcome = job.get("outcome") or {}
        outputs = agreed_outputs(
            job_id,
            outcome.get("outputs") or [],
            client.artifacts(job_id),
            finished_outputs_digest(check, job_id),
        )
        check_metrics(job_id, outcome.get("metrics"), finished_body(check, job_id))
        folder.mkdir(parents=True, exist_ok=True)
        files: list[Downloaded] = []
        with out.downloads() as observer:
            for name in sorted(outputs):
                files.append(
                    client.download_artifact(
                        job_id, name, folder, expected_sha256=outputs[name], observer=observer
                    )
                )
        save_atomic(folder / RECEIPT, receipt_bytes)
    metrics = (job.get("outcome") or {}).get("metrics")
    if METRICS in outputs:
        metrics = json.loads((folder / METRICS).read_bytes())
    if trusted_by is not None:
        proof = f"the receipt verifies against the log key {trusted_by}"
    else:
        proof = "the receipt verifies against the key the server sent (see the warning)"
    out.say(
        f"fetched {len(files)} files into {folder}; every digest matches the outcome and the "
        f"receipt, and {proof} (log size {check.size})"
    )
    if trusted_by is None:
        out.warn(UNPINNED)
    out.result(
        {
            "id": job_id,
            "dir": str(folder),
            "files": [{"name": f.name, "sha256": f.sha256, "bytes": f.bytes} for f in files],
            "metrics": metrics,
            "receipt": str(folder / RECEIPT),
            "verified": True,
            # "served": checked against the key the server sent, not one the caller holds.
            "key": "given" if key else "pinned" if trusted_by else "served",
        },
        str(folder),
    )
