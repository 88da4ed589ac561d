"""Researcher commands: submit a job folder, follow it, list, inspect and cancel jobs.

The checks are the library's (``runner.client.submission``: the spec, the bundle, the code the
server recorded; ``runner.client.follow``: pushed events, polling when the push breaks); these
commands pick the options and show what happened. Everything heavier than typer is imported in
the command that uses it, so `c2d --help` and `c2d status` start at once.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ledger.kinds import ExitCode
from runner.cli.options import RESEARCHER, ParamOption, note_option, parse_params
from runner.cli.output import JsonFlag, Output, short_time
from runner.cli.session import connect
from runner.cli.views import show_dryrun, show_job, show_own_image

if TYPE_CHECKING:
    from runner.client.api import Client
    from runner.client.follow import Followed

PANEL = RESEARCHER
app = typer.Typer()
SUCCESS = frozenset({"succeeded", "released"})
FAILURE = frozenset({"failed", "rejected", "cancelled"})
TAIL_LINES = 3


class JobStateName(StrEnum):
    """The job states, for `c2d jobs --state`."""

    pending = "pending"
    approved = "approved"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    rejected = "rejected"
    released = "released"
    cancelled = "cancelled"


def submission(spec: Any, bundle_digest: str, job: dict[str, Any]) -> dict[str, Any]:
    """The JSON document of `submit`."""
    return {
        "id": job["id"],
        "state": job["state"],
        "code_digest": job["code_digest"],
        "image_id": job.get("image_id"),
        "name": job.get("name", spec.name),
        "dataset": job.get("dataset", spec.dataset),
        "reason": job.get("reason"),
        "local_code_digest": bundle_digest,
    }


class StatusLine:
    """A ``runner.client.follow.Watcher`` drawing on stderr: the job's state and how long it
    has been followed, and the last lines of its log as they come (escaped by ``Output``)."""

    def __init__(self, out: Output, update: Any, job: dict[str, Any]) -> None:
        self.out = out
        self.update = update
        self.job_id = job["id"]
        self.state = job["state"]
        self.started = time.monotonic()
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self._partial = ""
        self._shown_state = self.state  # the status line starts with it

    def _show(self) -> None:
        if not self.out.console and self.state == self._shown_state:
            return  # a pipe gets one line per state, not one per second
        self._shown_state = self.state
        line = f"job {self.job_id}: {self.state} ({time.monotonic() - self.started:.0f} s)"
        if self.out.console and self.tail:
            line += "".join(f"\n  | {t}" for t in self.tail)
        self.update(line)

    def job(self, job: dict[str, Any]) -> None:
        self.state = job["state"]
        self._show()

    def log(self, text: str) -> None:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        if not lines:
            return
        if self.out.console:
            self.tail.extend(lines)
            self._show()
        else:  # a pipe: every line, once
            for line in lines:
                self.out.say(f"  | {line}")

    def note(self, text: str) -> None:
        self.out.warn(text) if "broke" in text else self.out.say(text, style="dim")


def follow(client: Client, job: dict[str, Any], out: Output) -> Followed:
    """Follow `job` to its end (pushed, with the last lines of its log where the reader may
    read it), showing each state on stderr; polls when the push breaks, and says so."""
    from runner.client.follow import follow as follow_job

    try:
        with out.status(f"job {job['id']}: {job['state']}") as update:
            watcher = StatusLine(out, update, job)
            return follow_job(client, job["id"], watcher, logs=True)
    except KeyboardInterrupt:
        out.hint(f"stopped following; job {job['id']} goes on (`c2d status {job['id']}`)")
        raise


@app.command(rich_help_panel=PANEL)
def submit(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(metavar="DIR", help="The job folder holding job.yaml.")],
    dataset: Annotated[
        str | None, typer.Option("--dataset", "-d", help="Dataset to run on (overrides job.yaml).")
    ] = None,
    param: ParamOption = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the job to its end; exit 1 if it fails.")
    ] = False,
    image_archive: Annotated[
        Path | None,
        typer.Option(
            "--image-archive",
            metavar="IMAGE.tar",
            help="Run in this image (the output of `docker save`), loaded on the data host.",
        ),
    ] = None,
    max_archive: Annotated[
        str, typer.Option("--max-archive", metavar="SIZE", help="Largest image archive to send.")
    ] = "4GiB",
    json_out: JsonFlag = False,
) -> None:
    """Check FOLDER/job.yaml, pack FOLDER deterministically, upload it; print the job id."""
    from jobs.units import parse_size
    from runner.client.submission import owns_image, prepare, send

    out = Output.start(json_out)
    try:
        params = parse_params(param or [])
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--param") from exc
    prepared = prepare(folder, dataset=dataset, params=params)
    bundle = prepared.bundle
    out.say(f"packed {len(bundle.files)} files ({bundle.size} bytes), bundle {bundle.digest}")
    with connect(ctx, out) as client:
        # A progress bar on a terminal while the archive uploads; nothing otherwise.
        bars = out.downloads() if image_archive is not None and out.console else None
        with bars or contextlib.nullcontext():
            job = send(
                client,
                prepared,
                image_archive=image_archive,
                max_archive_bytes=parse_size(max_archive),
                observer=bars,
            )
        if owns_image(prepared, image_archive):
            out.say(f"the data host pinned the job to its own image {job['image_id']}")
            out.hint(f"see its facts and build log with `c2d job-image {job['id']}`")
        out.say(
            f"submitted job {job['id']} on dataset {job.get('dataset')}: {job['state']}, "
            f"code {job['code_digest']}"
        )
        if not wait:
            out.hint(f"follow it with `c2d status {job['id']}`")
            out.result(submission(prepared.spec, bundle.digest, job), job["id"])
            return
        job = follow(client, job, out).job
    _report_end(out, job)
    out.result(submission(prepared.spec, bundle.digest, job), job["id"])
    if job["state"] in FAILURE:
        raise typer.Exit(ExitCode.FAILED)


@app.command("job-image", rich_help_panel=PANEL)
def image(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(metavar="JOB", help="The job id.")],
    json_out: JsonFlag = False,
) -> None:
    """Show a job's own image: base, size, layers, USER, ENTRYPOINT, CMD, build log."""
    out = Output.start(json_out)
    with connect(ctx, out) as client:
        doc = client.own_image(job_id)
    show_own_image(out, doc)
    out.result(doc)


def _report_end(out: Output, job: dict[str, Any]) -> None:
    from jobs.safe_text import one_line

    reason = f": {one_line(job['reason'])}" if job.get("reason") else ""
    out.say(f"job {job['id']} {job['state']}{reason}")
    if job["state"] == "released":
        out.hint(f"fetch the outputs with `c2d fetch {job['id']}`")
    elif job["state"] == "succeeded":
        out.hint("the data owner reviews the outputs before release; then `c2d fetch`")


def _job_rows(jobs: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        [j["id"], j.get("name"), j.get("dataset"), j.get("researcher"), j["state"],
         short_time(j.get("created"))]
        for j in jobs
    ]  # fmt: skip


@app.command("jobs", rich_help_panel=PANEL)
def list_jobs(
    ctx: typer.Context,
    state: Annotated[
        JobStateName | None, typer.Option("--state", help="Only jobs in this state.")
    ] = None,
    dataset: Annotated[
        str | None, typer.Option("--dataset", "-d", help="Only jobs on this dataset.")
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", min=1, help="Only the newest N.")
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """List the jobs you may see (yours, or those on your datasets), oldest first."""
    out = Output.start(json_out)
    wanted = state.value if state else None
    with connect(ctx, out) as client:
        jobs = client.jobs(wanted, dataset=dataset, limit=limit)
    filters = [f"in state {wanted}"] if wanted else []
    filters += [f"on dataset {dataset}"] if dataset else []
    out.table(
        ["id", "name", "dataset", "researcher", "state", "created (UTC)"],
        _job_rows(jobs),
        empty=" ".join(["no jobs", *filters]),
    )
    out.result(jobs)


@app.command(rich_help_panel=PANEL)
def status(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(metavar="JOB", help="The job id.")],
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="Follow the job to its end, with the last lines of its log where you may read "
            "it; exit 1 if it fails.",
        ),
    ] = False,
    json_out: JsonFlag = False,
) -> None:
    """Show one job: its state, reason, digests and outcome."""
    out = Output.start(json_out)
    with connect(ctx, out) as client:
        job = client.job(job_id)
        if wait:
            job = follow(client, job, out).job
        # While it waits for review, the researcher sees how it ran on mock data (if allowed).
        dryrun = client.dryrun(job_id) if job["state"] == "pending" and not json_out else None
    show_job(out, job)
    if job["state"] == "pending" and not json_out:
        out.say("")
        show_dryrun(out, dryrun)
    out.result(job)
    if wait and job["state"] in FAILURE:
        raise typer.Exit(ExitCode.FAILED)


@app.command(rich_help_panel=PANEL)
def cancel(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(metavar="JOB", help="The job id.")],
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why, for the ledger.", callback=note_option)
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Cancel a job that has not finished (pending, approved or running)."""
    out = Output.start(json_out)
    with connect(ctx, out) as client:
        job = client.cancel(job_id, reason)
    out.say(f"job {job['id']}: {job['state']}")
    out.result(job)
