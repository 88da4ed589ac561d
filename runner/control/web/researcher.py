"""A person's jobs: the list (updated live), a job's page, its released files and receipt.

The list and a job's status are fragments the page's script fetches again every few seconds
(``static/live.js``) until the job can no longer change: the same service calls as the page,
so a fragment shows no more than the page would. Downloads are ``authorize_download`` (only
released outputs), sent as attachments that the browser never renders; an output its data host
has not uploaded yet is asked for and answered 503 with ``Retry-After``, like the API's.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from jobs import access
from jobs.errors import NotFound
from jobs.models import Job
from jobs.states import TERMINAL
from runner.control.api.deps import State
from runner.control.api.results import NotYetHere
from runner.control.api.views import job_view
from runner.control.web.render import page
from runner.control.web.sessions import PATH, SignedIn, Viewer
from runner.wire import SHA256_HEADER

router = APIRouter(prefix=PATH, include_in_schema=False)

LIVE_HEADER = "X-C2D-Live"
LIST_MAX = 200  # jobs on the list page; `c2d jobs` lists them all
_DOWNLOAD_HEADERS = {
    # An output is the job's file: never run or shown in the page's origin.
    "Content-Security-Policy": "sandbox; default-src 'none'",
    "X-Content-Type-Options": "nosniff",
}


def _live(done: bool) -> dict[str, str]:
    """Tells the page's script whether to keep fetching the fragment."""
    return {LIVE_HEADER: "done" if done else "more"}


def _rows(state: State, who: Viewer) -> tuple[list[dict[str, Any]], bool, int]:
    """The newest ``LIST_MAX`` jobs the viewer may see, whether none of those can change any
    more, and how many there are in all."""
    jobs = state.ctx.service.list_jobs(who.user)
    shown = jobs[-LIST_MAX:][::-1]
    views = [{**job_view(job), "created_s": job.created} for job in shown]
    return views, all(job.state in TERMINAL for job in shown), len(jobs)


@router.get("/jobs")
def jobs(request: Request, who: SignedIn, state: State) -> Response:
    """The jobs the viewer may see, newest first, updated live."""
    rows, done, total = _rows(state, who)
    return page(
        request, "jobs.html", who, title="Jobs", rows=rows, total=total, headers=_live(done)
    )


@router.get("/jobs/rows")
def job_rows(request: Request, who: SignedIn, state: State) -> Response:
    """The list's rows alone (the live part of ``/ui/jobs``)."""
    rows, done, _ = _rows(state, who)
    return page(request, "_job_rows.html", who, rows=rows, headers=_live(done))


def _job_page(state: State, who: Viewer, job_id: str) -> dict[str, Any]:
    service = state.ctx.service
    job = service.get_job(who.user, job_id)
    dataset = service.dataset_of(job)
    return {
        "job": job_view(job),
        "governs": access.governs(who.user, dataset),
        "mine": job.researcher == who.user.name,
        "dryrun": service.dryrun_for(who.user, job.id),
        "entries": [e.type for e in state.ctx.ledger.entries_for(job.id)],
    }


@router.get("/jobs/{job_id}")
def job(request: Request, job_id: str, who: SignedIn, state: State) -> Response:
    """A job's state, reason, metrics and released files, its receipt and ledger entries."""
    found = _job_page(state, who, job_id)
    done = found["job"]["state"] in {s.value for s in TERMINAL}
    return page(request, "job.html", who, title=f"Job {job_id}", **found, headers=_live(done))


@router.get("/jobs/{job_id}/status")
def job_status(request: Request, job_id: str, who: SignedIn, state: State) -> Response:
    """The job page's status part alone (fetched again until the job can change no more)."""
    found = _job_page(state, who, job_id)
    done = found["job"]["state"] in {s.value for s in TERMINAL}
    return page(request, "_job_status.html", who, **found, headers=_live(done))


def _download_name(name: str) -> str:
    """The file name a browser saves an output under: its last part, plain characters only."""
    base = name.rsplit("/", 1)[-1]
    return re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".") or "output"


def _output(job: Job, name: str) -> Any:
    found = next((o for o in (job.outcome.outputs if job.outcome else []) if o.name == name), None)
    if found is None:
        raise NotFound(f"job {job.id} has no released output {name!r}")
    return found


@router.get("/jobs/{job_id}/files/{name:path}")
def download(job_id: str, name: str, who: SignedIn, state: State) -> FileResponse:
    """One released output, as an attachment (with its digest in ``X-C2D-SHA256``)."""
    job = state.ctx.service.authorize_download(who.user, job_id)
    output = _output(job, name)
    if not state.ctx.artifacts.has(output.sha256):
        state.ask_host_soon(job, "outputs")
        raise NotYetHere(
            f"{name} is still on the data host of job {job_id}, which has been asked to upload "
            "it; try again in a few seconds"
        )
    return FileResponse(
        state.ctx.artifacts.path(output.sha256),
        media_type="application/octet-stream",
        filename=_download_name(name),
        headers={**_DOWNLOAD_HEADERS, SHA256_HEADER: output.sha256.removeprefix("sha256:")},
    )


@router.get("/jobs/{job_id}/receipt.json")
def receipt(job_id: str, who: SignedIn, state: State) -> JSONResponse:
    """The job's receipt (its entries, their inclusion proofs, a signed checkpoint), to keep
    and check offline with ``c2d receipt verify``."""
    job = state.ctx.service.get_job(who.user, job_id)
    disposition = f'attachment; filename="receipt-{job.id}.json"'
    return JSONResponse(
        state.ctx.ledger.receipt(job.id),
        headers={**_DOWNLOAD_HEADERS, "Content-Disposition": disposition},
    )
