"""Routes about the ledger: its entries page by page, its checkpoints, consistency proofs
between two of its sizes, and its public key.

Every authenticated user may read the whole log: entries carry digests and decisions, never
data, and anyone must be able to check that the log was not rewritten.
"""

from __future__ import annotations

import base64
import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse

from ledger import storage, verify_log
from runner.context import Context
from runner.control.api.deps import Actor, State
from runner.control.api.errors import errors

router = APIRouter(prefix="/v1/ledger")

PAGE_MAX = 1000


@router.get("/entries", responses=errors(401, 422))
def entries(
    actor: Actor,
    state: State,
    start: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = PAGE_MAX,
) -> dict[str, Any]:
    """``{"size", "entries": [{"index", "entry"}]}`` with each entry's canonical bytes, base64."""
    ledger = state.ctx.ledger
    size = ledger.size()
    rows = ledger.entries(start, limit) if start < size else []
    return {
        "size": size,
        "entries": [
            {"index": e.seq, "entry": base64.b64encode(e.canonical_bytes()).decode()} for e in rows
        ],
    }


@router.get("/checkpoint", response_class=PlainTextResponse, responses=errors(401))
def checkpoint(actor: Actor, state: State) -> PlainTextResponse:
    """The signed note of the current tree head (signed now if the head moved)."""
    return PlainTextResponse(state.ctx.ledger.checkpoint())


@router.get("/checkpoints", responses=errors(401))
def checkpoints(actor: Actor, state: State) -> dict[str, Any]:
    """Every checkpoint the log signed, oldest first."""
    with contextlib.closing(storage.connect(state.ctx.settings.db_path)) as conn:
        notes = [note for _, note in storage.checkpoints(conn)]
    return {"checkpoints": notes}


@router.get("/consistency", responses=errors(401, 404, 422))
def consistency(
    actor: Actor,
    state: State,
    first: Annotated[int, Query(ge=1)],
    second: Annotated[int, Query(ge=1)],
) -> dict[str, Any]:
    """``{"first", "second", "proof": [base64 hashes]}``: the RFC 9162 proof that the log at
    ``second`` entries extends the log at ``first``, for a reader who kept a checkpoint at
    ``first`` (``c2d ledger verify --since``, ``c2d fetch``). 404 when the log holds fewer
    than ``second`` entries or ``first`` is larger than ``second``."""
    proof = state.ctx.ledger.consistency_proof(first, second)
    return {
        "first": first,
        "second": second,
        "proof": [base64.b64encode(node).decode() for node in proof],
    }


@router.get("/public-key", responses=errors(401))
def public_key(actor: Actor, state: State) -> dict[str, Any]:
    """The log's origin and its Ed25519 public key (base64 of the raw 32 bytes)."""
    ledger = state.ctx.ledger
    return {"origin": ledger.origin, "public_key": base64.b64encode(ledger.public_key()).decode()}


def verify_here(ctx: Context) -> dict[str, Any]:
    """The whole stored log verified now against the log's own key (``verify_log``, the
    check of ``c2d ledger verify --home``), with ``"source": "server"``."""
    report = verify_log(ctx.settings.db_path, ctx.ledger.public_key())
    return {**report.model_dump(), "source": "server"}


@router.get("/verify", responses=errors(401))
def verify(actor: Actor, state: State) -> dict[str, Any]:
    """The server's own verification of its stored log (what the ledger page's "verify now"
    shows). It proves the stored log is whole, not that the server is honest: for that,
    `c2d ledger verify --key KEY` checks the log on the reader's machine."""
    return verify_here(state.ctx)
