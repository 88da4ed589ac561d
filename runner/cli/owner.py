"""Data owner commands: review, approve, reject, release, refuse and trust jobs, read their logs."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from jobs.safe_text import MAX_NOTE
from runner.cli.options import OWNER, JobArg, note_option
from runner.cli.output import JsonFlag, Output
from runner.cli.session import connect
from runner.cli.views import show_dryrun, show_job, show_own_image

PANEL = OWNER
app = typer.Typer()


def _resources(value: Any) -> str:
    """Resources as people write them (`memory=1GiB ...`), or the raw JSON if unreadable."""
    from jobs.spec import Resources

    try:
        human = Resources.model_validate(value).human()
    except ValueError:
        return json.dumps(value, sort_keys=True)
    return " ".join(f"{k}={v}" for k, v in human.items())


def _environment(spec: dict[str, Any], image: dict[str, Any] | None) -> str | None:
    """The environment a job runs in, as a reviewer needs to read it."""
    if not image:
        return spec.get("environment")
    if image.get("source") == "archive":
        return "its own image, loaded from an uploaded archive (below)"
    return f"its own image, built from {image.get('dockerfile') or 'Dockerfile'} (below)"


def _show_review(out: Output, review: dict[str, Any]) -> None:
    job = review["job"]
    spec = job.get("spec") or {}
    # First: whether this code ran at all, on mock data, before anyone approved it.
    show_dryrun(out, review.get("dryrun"))
    out.say("")
    show_job(out, job)
    out.say("")
    out.fields(
        [
            ("environment", _environment(spec, review.get("image"))),
            ("command", " ".join(spec.get("command") or [])),
            ("params", json.dumps(spec.get("params"), sort_keys=True)),
            ("resources", _resources(spec.get("resources"))),
            ("outputs", ", ".join(spec.get("outputs") or []) or "(metrics.json only)"),
            ("image", job.get("image_id")),
            ("dataset digest", job.get("dataset_digest")),
            ("params digest", job.get("params_digest")),
        ]
    )
    out.say("")
    out.table(["file", "bytes"], [[f["name"], f.get("bytes")] for f in review["files"]], "")
    previous = review.get("previous")
    out.say("")
    if previous is None:
        out.say("no earlier approved code from this researcher on this dataset; all of it:")
    elif not review.get("diff"):
        out.say(f"the code is identical to approved job {previous}")
    else:
        out.say(f"changes since approved job {previous}:")
    if review.get("diff"):
        out.text_block(review["diff"], syntax="diff")
    if review.get("image"):
        show_own_image(out, review["image"])


@app.command(rich_help_panel=PANEL)
def review(ctx: typer.Context, job_id: JobArg, json_out: JsonFlag = False) -> None:
    """Show a job's spec, files, digests and its diff against the last approved code."""
    out = Output.start(json_out)
    with connect(ctx, out) as client:
        doc = client.review(job_id)
    _show_review(out, doc)
    job = doc.get("job") or {}
    if job.get("state") == "succeeded":
        checks = (job.get("outcome") or {}).get("checks") or []
        despite = " --despite-checks" if any(not c.get("passed") for c in checks) else ""
        out.hint(
            f"release with `c2d release {job_id}{despite}` or refuse with "
            f"`c2d refuse {job_id} --reason`"
        )
    else:
        out.hint(
            f"approve with `c2d approve {job_id}` or reject with `c2d reject {job_id} --reason`"
        )
    out.result(doc)


@app.command(rich_help_panel=PANEL)
def approve(
    ctx: typer.Context,
    job_id: JobArg,
    note: Annotated[
        str | None,
        typer.Option(
            "--note",
            help=f"A note for the ledger (at most {MAX_NOTE} characters).",
            callback=note_option,
        ),
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Approve exactly this code, image, dataset and params for a run."""
    out = Output.start(json_out)
    with connect(ctx, out) as client:
        job = client.approve(job_id, note)
    out.say(f"approved job {job['id']} (code {job.get('code_digest')}): {job['state']}")
    out.result(job)


@app.command(rich_help_panel=PANEL)
def reject(
    ctx: typer.Context,
    job_id: JobArg,
    reason: Annotated[
        str,
        typer.Option("--reason", help="Why, shown to the researcher.", callback=note_option),
    ],
    json_out: JsonFlag = False,
) -> None:
    """Reject a pending job; it never runs."""
    out = Output.start(json_out)
    with connect(ctx, out) as client:
        job = client.reject(job_id, reason)
    out.say(f"rejected job {job['id']}")
    out.result(job)


@app.command(rich_help_panel=PANEL)
def release(
    ctx: typer.Context,
    job_id: JobArg,
    despite_checks: Annotated[
        bool,
        typer.Option(
            "--despite-checks",
            help="Release even though automatic output checks failed (`c2d review` shows them).",
        ),
    ] = False,
    json_out: JsonFlag = False,
) -> None:
    """Release a succeeded job's outputs to its researcher."""
    out = Output.start(json_out)
    with connect(ctx, out) as client:
        job = client.release(job_id, despite_checks=despite_checks)
    out.say(f"released the outputs of job {job['id']}")
    out.result(job)


@app.command(rich_help_panel=PANEL)
def refuse(
    ctx: typer.Context,
    job_id: JobArg,
    reason: Annotated[
        str,
        typer.Option("--reason", help="Why, shown to the researcher.", callback=note_option),
    ],
    json_out: JsonFlag = False,
) -> None:
    """Refuse to release a succeeded job's outputs; they never leave (the job is cancelled)."""
    out = Output.start(json_out)
    with connect(ctx, out) as client:
        job = client.refuse(job_id, reason)
    out.say(f"refused the outputs of job {job['id']}: {job['state']}")
    out.result(job)


@app.command(rich_help_panel=PANEL)
def trust(
    ctx: typer.Context,
    job_id: JobArg,
    any_params: Annotated[
        bool,
        typer.Option(
            "--any-params",
            help="Trust the code whatever params the researcher passes (default: only the "
            "params of this job).",
        ),
    ] = False,
    json_out: JsonFlag = False,
) -> None:
    """Trust this job's code on its dataset for its researcher: her later jobs with the same
    code (and params) are approved by policy. Never for your own jobs or the owner's."""
    out = Output.start(json_out)
    with connect(ctx, out) as client:
        doc = client.trust(job_id, any_params=any_params)
    scope = (
        "with any params"
        if doc.get("any_params")
        else f"with params {doc.get('params_digest')} only"
    )
    out.say(
        f"trusted code {doc.get('code_digest')} on dataset {doc.get('dataset')} for jobs of "
        f"{doc.get('researcher')} {scope}"
    )
    if not doc.get("any_params"):
        out.hint(f"other params wait for review; `c2d trust {job_id} --any-params` allows any")
    out.result(doc)


class LogLines:
    """A ``runner.client.follow.Watcher`` for `logs -f`: the log on stdout as it comes
    (escaped by ``Output``; kept for the document with --json), states on stderr."""

    def __init__(self, out: Output) -> None:
        self.out = out
        self.parts: list[str] = []
        self.state: str | None = None

    def job(self, job: dict[str, Any]) -> None:
        if job["state"] != self.state:
            self.state = job["state"]
            self.out.say(f"job {job['id']}: {job['state']}", style="dim")

    def log(self, text: str) -> None:
        self.parts.append(text)
        if not self.out.json_mode:
            self.out.stream(text)

    def note(self, text: str) -> None:
        self.out.warn(text)


@app.command(rich_help_panel=PANEL)
def logs(
    ctx: typer.Context,
    job_id: JobArg,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            "-f",
            help="Stream the running job's output as it comes, until the job ends.",
        ),
    ] = False,
    json_out: JsonFlag = False,
) -> None:
    """Print a job's container log (its stdout and stderr), control characters escaped; for a
    job still running, what it has written so far (all of it as it comes, with -f)."""
    # Escaped so that the log cannot redraw the reader's terminal; --json has the raw text.
    out = Output.start(json_out)
    with connect(ctx, out) as client:
        if follow:
            from runner.client.follow import follow as follow_job

            lines = LogLines(out)
            try:
                done = follow_job(client, job_id, lines, logs=True, rest=True)
            except KeyboardInterrupt:
                out.hint(f"stopped following; job {job_id} goes on (`c2d logs {job_id}`)")
                raise
            text = "".join(lines.parts)
            truncated = bool((done.job.get("outcome") or {}).get("log_truncated"))
            out.result({"id": job_id, "log": text, "truncated": truncated, "live": False})
            return
        piece = client.log_piece(job_id)
    if piece.live:
        out.say(f"job {job_id} has not ended: its log so far (`c2d logs -f {job_id}` follows it)")
    if piece.truncated:
        out.warn("the log was cut at its size cap; the end of the job's output is missing")
    doc = {"id": job_id, "log": piece.text, "truncated": piece.truncated, "live": piece.live}
    out.result(doc, piece.text)
