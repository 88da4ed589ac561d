"""The ledger's page: its size, its last checkpoint, a job's entries, and verification now.

"Verify now" runs ``ledger.verify_log`` on the server's database against the log's own key:
the check ``c2d ledger verify --home`` runs (every entry's encoding, seq and link, the Merkle
tree and every checkpoint's signature). It proves the stored log is whole; a reader who does
not trust this server runs ``c2d ledger verify --key KEY`` on their own machine, as the page
says. Every signed-in person may read the ledger, as through the API.
"""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from ledger.entry import Entry
from runner.control.api.audit import verify_here
from runner.control.api.deps import State
from runner.control.web.render import page
from runner.control.web.sessions import PATH, Form, SignedIn, Viewer

router = APIRouter(prefix=PATH, include_in_schema=False)

PAGE = 50


def _entry(entry: Entry) -> dict[str, Any]:
    data = json.loads(entry.canonical_bytes())
    subject = str(data["subject"])
    # Subjects without a colon are job ids; others are `dataset:NAME` or `user:NAME`.
    return {**data, "job": subject if ":" not in subject else None}


def _ledger_page(
    request: Request,
    who: Viewer,
    state: State,
    job: str | None,
    start: int | None,
    report: dict[str, Any] | None = None,
) -> Response:
    ledger = state.ctx.ledger
    size = ledger.size()
    if job:
        entries = ledger.entries_for(job)
        first = 0
    else:
        first = max(0, size - PAGE) if start is None else max(0, min(start, size))
        entries = ledger.entries(first, PAGE)
    return page(
        request,
        "ledger.html",
        who,
        title="Ledger",
        size=size,
        origin=ledger.origin,
        public_key=base64.b64encode(ledger.public_key()).decode(),
        checkpoint=ledger.latest_checkpoint(),
        entries=[_entry(e) for e in reversed(entries)],
        job=job,
        first=first,
        page_size=PAGE,
        report=report,
    )


@router.get("/ledger")
def ledger_page(
    request: Request,
    who: SignedIn,
    state: State,
    job: str | None = None,
    start: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    """The newest entries (or a page from ``start``, or one job's), with the log's facts."""
    return _ledger_page(request, who, state, job, start)


@router.post("/ledger/verify")
def verify(request: Request, sent: Form, state: State) -> Response:
    """Verify the whole log on the server now and show the result above the entries."""
    return _ledger_page(request, sent.viewer, state, None, None, verify_here(state.ctx))
