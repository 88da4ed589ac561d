"""The data owner's pages: the queue, a job's review and its decisions, the outputs' review.

Every page and action asks ``jobs.service`` as the signed-in person: the review is
``review_document`` (the body of ``GET /v1/jobs/{id}/review``, which ``c2d review`` prints),
the decisions are ``approve``, ``reject``, ``trust``, ``release`` and ``refuse``, as for the
CLI, with the same ledger entries. A researcher opening a review page gets the service's
``NotAllowed`` as a 403 page.

A job's outputs and log stay on its data host until needed. The outputs' review asks the host
to upload them for review (``runner.control.previews``: kept apart from released artifacts,
never read from those before release) and its log; until they are here the page says it is
fetching them from the data host, and its script fetches that part again every few seconds
(``static/live.js``), asking the host again at most every ``ASK_EVERY_S`` seconds.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import RedirectResponse, Response

from jobs.models import Job
from jobs.signed_actions import decision_statement, release_statement, trust_statement
from jobs.spec import Resources
from jobs.states import JobState
from runner.control.api.deps import State
from runner.control.api.reviewing import queue_entry, review_document
from runner.control.api.views import job_view
from runner.control.previews import gather
from runner.control.web.highlight import diff_sections
from runner.control.web.render import page
from runner.control.web.researcher import LIVE_HEADER
from runner.control.web.sessions import PATH, Form, SignedIn, Viewer
from runner.control.web.signing import signed_field, signing, statement_json

router = APIRouter(prefix=PATH, include_in_schema=False)

MAX_DIFF_SHOWN = 2 * 1024 * 1024
LOG_TAIL = 64 * 1024
DONE = {
    "approved": "Approved. The job goes to its data host's queue.",
    "rejected": "Rejected. The researcher reads your reason.",
    "trusted": "Trusted. This researcher's later jobs with this code are approved by policy.",
    "released": "Released. The researcher may fetch the outputs now.",
    "refused": "Refused. The outputs never leave; the researcher reads your reason.",
}


def _done(request: Request) -> str | None:
    return DONE.get(request.query_params.get("done", ""))


@router.get("/queue")
def queue(request: Request, who: SignedIn, state: State) -> Response:
    """Pending jobs on the datasets the viewer governs (oldest first, with their dry runs),
    then succeeded jobs whose outputs wait for release (``GET /v1/queue`` is its JSON)."""
    # How long each has waited: since submission for a review, since the run for a release.
    waiting = [
        (job.finished or job.created, queue_entry(state.ctx, who.user, job))
        for job in state.ctx.service.review_queue(who.user)
    ]
    pending = [w for w in waiting if w[1]["job"]["state"] == JobState.PENDING.value]
    outputs = [w for w in waiting if w[1]["job"]["state"] == JobState.SUCCEEDED.value]
    title = f"Queue ({len(pending)} to review, {len(outputs)} to release)"
    return page(request, "queue.html", who, title=title, pending=pending, outputs=outputs)


@router.get("/jobs/{job_id}/review")
def review(request: Request, job_id: str, who: SignedIn, state: State) -> Response:
    """Everything ``c2d review`` shows, dry run first, and the forms to decide."""
    doc = review_document(state.ctx, who.user, job_id)
    text = doc["diff"] or ""
    cut = len(text) > MAX_DIFF_SHOWN
    sections = diff_sections(text[:MAX_DIFF_SHOWN])
    return page(
        request,
        "review.html",
        who,
        title=f"Review job {job_id}",
        doc=doc,
        job=doc["job"],
        spec=doc["job"]["spec"],
        resources=_resources(doc["job"]["spec"].get("resources")),
        dryrun=doc["dryrun"],
        image=doc["image"],
        sections=sections,
        diff_bytes=len(text.encode()),
        diff_cut=cut,
        own_job=doc["job"]["researcher"] == who.user.name,
        done=_done(request),
        **_decision_statements(state, who, doc["job"]),
    )


def _decision_statements(state: State, who: Viewer, job: dict[str, Any]) -> dict[str, Any]:
    """The statements the review page's forms sign (``signing``): approve and reject with
    the note the person types, trust with these params or, ticked, any."""
    origin, name = state.ctx.ledger.origin, who.user.name
    return {
        "signing": signing(state, who.user),
        "statements": {
            "approve": statement_json(decision_statement(origin, name, job, "approve", "")),
            "reject": statement_json(decision_statement(origin, name, job, "reject", "")),
            "trust": statement_json(trust_statement(origin, name, job, any_params=False)),
        },
    }


def _resources(value: Any) -> dict[str, Any]:
    """Resources as people write them (``memory=1GiB``), or as they are if unreadable."""
    try:
        return dict(Resources.model_validate(value).human())
    except ValueError:
        return dict(value or {})


def _back(job_id: str, page_name: str, done: str) -> RedirectResponse:
    return RedirectResponse(f"{PATH}/jobs/{job_id}/{page_name}?done={done}", 303)


@router.post("/jobs/{job_id}/approve")
def approve(job_id: str, sent: Form, state: State, background: BackgroundTasks) -> Response:
    """``Service.approve`` with the note, then the same dispatch as the API's route."""
    note = sent.text("note")
    job = state.ctx.service.approve(sent.viewer.user, job_id, note, signed_field(sent))
    background.add_task(state.dispatch, job)
    return _back(job_id, "review", "approved")


@router.post("/jobs/{job_id}/reject")
def reject(job_id: str, sent: Form, state: State) -> Response:
    """``Service.reject`` with the reason."""
    reason = sent.text("reason")
    state.ctx.service.reject(sent.viewer.user, job_id, reason, signed_field(sent))
    return _back(job_id, "review", "rejected")


@router.post("/jobs/{job_id}/trust")
def trust(job_id: str, sent: Form, state: State) -> Response:
    """``Service.trust``: this code, for this researcher, with these params (or any)."""
    any_params = sent.text("any_params") == "yes"
    state.ctx.service.trust(
        sent.viewer.user, job_id, any_params=any_params, signed=signed_field(sent)
    )
    return _back(job_id, "review", "trusted")


def _files(state: State, job: Job) -> tuple[list[dict[str, Any]], bool]:
    """Every output of the job (name, size, digest, and its preview once it is here), and
    whether the data host was asked for the missing ones (they come in a few seconds)."""
    found = gather(state.ctx, job)
    shown = {p.sha256: p.as_dict() for p in found.previews}
    files = [
        {"name": o.name, "bytes": o.bytes, "sha256": o.sha256, "preview": shown.get(o.sha256)}
        for o in (job.outcome.outputs if job.outcome else [])
    ]
    if found.missing and found.ask is not None:
        state.ask_host_soon(job, found.ask)
        return files, True
    return files, False


def log_tail(state: State, job: Job) -> tuple[str | None, bool, bool]:
    """The end of the job's log (at most ``LOG_TAIL`` bytes), whether it was cut here, and
    whether its data host was asked for it (it is not here yet)."""
    digest = job.outcome.log_digest if job.outcome else None
    if digest is None:
        return None, False, False
    if not state.ctx.artifacts.has(digest):
        state.ask_host_soon(job, "log")
        return None, False, True
    with state.ctx.artifacts.open(digest) as handle:
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - LOG_TAIL))
        data = handle.read()
    return data.decode("utf-8", errors="replace"), size > LOG_TAIL, False


def _what_the_outputs_hold(state: State, who: Viewer, job_id: str) -> dict[str, Any]:
    job = state.ctx.service.authorize_outputs(who.user, job_id)
    files, fetching = _files(state, job)
    tail, tail_cut, log_fetching = log_tail(state, job)
    return {
        "job": job_view(job),
        "files": files,
        "fetching": fetching,
        "log": tail,
        "log_cut": tail_cut,
        "log_fetching": log_fetching,
        "log_truncated": bool(job.outcome and job.outcome.log_truncated),
        "live": fetching or log_fetching,
    }


@router.get("/jobs/{job_id}/outputs")
def outputs(request: Request, job_id: str, who: SignedIn, state: State) -> Response:
    """Metrics, every output's name, size, type and digest, a preview of text outputs and the
    log's end; release or refuse while the job waits for that."""
    found = _what_the_outputs_hold(state, who, job_id)
    return page(
        request,
        "outputs.html",
        who,
        title=f"Outputs of job {job_id}",
        **found,
        # Only the dataset's owner or an admin reaches a job that is not yet released.
        decide=found["job"]["state"] == JobState.SUCCEEDED.value,
        done=_done(request),
        signing=signing(state, who.user),
        release_statement=statement_json(
            release_statement(
                state.ctx.ledger.origin,
                who.user.name,
                job_id,
                (found["job"].get("outcome") or {}).get("outputs") or [],
            )
        ),
    )


@router.get("/jobs/{job_id}/outputs/files")
def outputs_files(request: Request, job_id: str, who: SignedIn, state: State) -> Response:
    """The outputs' files, previews and log alone: what the page's script fetches again while
    some of them are still on the data host (the same checks as the page)."""
    found = _what_the_outputs_hold(state, who, job_id)
    headers = {LIVE_HEADER: "more" if found["live"] else "done"}
    return page(request, "_outputs_files.html", who, **found, headers=headers)


@router.post("/jobs/{job_id}/release")
def release(job_id: str, sent: Form, state: State, background: BackgroundTasks) -> Response:
    """``Service.release``, then, as the API's route does, ask the job's data host to upload
    the outputs (the control plane checks each against the digests the host signed). The
    form's box says the owner saw the failed output checks, if any."""
    despite = sent.text("despite_checks") == "yes"
    job = state.ctx.service.release(
        sent.viewer.user, job_id, despite_checks=despite, signed=signed_field(sent)
    )
    background.add_task(state.ask_host, job, "outputs")
    return _back(job_id, "outputs", "released")


@router.post("/jobs/{job_id}/refuse")
def refuse(job_id: str, sent: Form, state: State) -> Response:
    """``Service.refuse`` with the reason."""
    state.ctx.service.refuse(sent.viewer.user, job_id, sent.text("reason"))
    return _back(job_id, "outputs", "refused")
