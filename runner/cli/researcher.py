"""Researcher commands: submit a job folder, follow it, list, inspect and cancel jobs."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from jobs.bundle import pack
from jobs.errors import SpecError
from jobs.images import image_code_digest
from jobs.models import JobSpec
from jobs.safe_text import one_line
from jobs.units import parse_size
from ledger.kinds import ExitCode
from runner.cli.options import RESEARCHER, ParamOption, note_option, parse_params
from runner.cli.output import JsonFlag, Output, short_time
from runner.cli.session import connect
from runner.cli.views import show_dryrun, show_job, show_own_image
from runner.client import Client
from runner.errors import IntegrityError

PANEL = RESEARCHER
app = typer.Typer()
SUCCESS = frozenset({"succeeded", "released"})
FAILURE = frozenset({"failed", "rejected", "cancelled"})
POLL_S = 1.0


def submission(spec: JobSpec, bundle_digest: str, job: dict[str, Any]) -> dict[str, Any]:
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


def follow(client: Client, job: dict[str, Any], out: Output) -> dict[str, Any]:
    """Poll `job` until it stops moving, showing each state on stderr; return the last view."""
    started = time.monotonic()
    try:
        with out.status(f"job {job['id']}: {job['state']}") as update:
            while job["state"] not in SUCCESS | FAILURE:
                time.sleep(POLL_S)
                job = client.job(job["id"])
                update(f"job {job['id']}: {job['state']} ({time.monotonic() - started:.0f} s)")
    except KeyboardInterrupt:
        out.hint(f"stopped following; job {job['id']} goes on (`c2d status {job['id']}`)")
        raise
    return job


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
    out = Output.start(json_out)
    try:
        params = parse_params(param or [])
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--param") from exc
    spec_file = folder / "job.yaml"
    spec = JobSpec.from_yaml(spec_file).with_overrides(dataset=dataset, params=params)
    if spec.dataset is None:
        raise SpecError(
            f"{spec_file}: no dataset to run on; add `dataset: NAME` or pass --dataset NAME",
            file=str(spec_file),
            field="dataset",
            allowed="a registered dataset name (`c2d dataset list`)",
        )
    bundle = pack(folder)
    out.say(f"packed {len(bundle.files)} files ({bundle.size} bytes), bundle {bundle.digest}")
    with connect(ctx, out) as client:
        # A progress bar on a terminal while the archive uploads; nothing otherwise.
        bars = out.downloads() if image_archive is not None and out.console else None
        with bars or contextlib.nullcontext():
            job = client.submit(
                spec.model_dump(mode="json"),
                bundle.data,
                image_archive,
                max_archive_bytes=parse_size(max_archive),
                observer=bars,
            )
        own = image_archive is not None or spec.image is not None
        # An own image's code digest covers the bundle sent and the image the host made.
        expected = image_code_digest(bundle.digest, job["image_id"]) if own else bundle.digest
        if job.get("code_digest") != expected:
            raise IntegrityError(
                f"the server recorded code {job.get('code_digest')} for job {job['id']}, but "
                f"the bundle sent hashes to {bundle.digest}; cancel it (`c2d cancel "
                f"{job['id']}`) and tell the operator"
            )
        if own:
            out.say(f"the data host pinned the job to its own image {job['image_id']}")
            out.hint(f"see its facts and build log with `c2d job-image {job['id']}`")
        out.say(
            f"submitted job {job['id']} on dataset {job.get('dataset')}: {job['state']}, "
            f"code {job['code_digest']}"
        )
        if not wait:
            out.hint(f"follow it with `c2d status {job['id']}`")
            out.result(submission(spec, bundle.digest, job), job["id"])
            return
        job = follow(client, job, out)
    _report_end(out, job)
    out.result(submission(spec, bundle.digest, job), job["id"])
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
        str | None, typer.Option("--state", help="Only jobs in this state, e.g. pending.")
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """List the jobs you may see (yours, or those on your datasets)."""
    out = Output.start(json_out)
    with connect(ctx, out) as client:
        jobs = client.jobs(state)
    out.table(
        ["id", "name", "dataset", "researcher", "state", "created (UTC)"],
        _job_rows(jobs),
        empty="no jobs" + (f" in state {state}" if state else ""),
    )
    out.result(jobs)


@app.command(rich_help_panel=PANEL)
def status(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(metavar="JOB", help="The job id.")],
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the job to its end; exit 1 if it fails.")
    ] = False,
    json_out: JsonFlag = False,
) -> None:
    """Show one job: its state, reason, digests and outcome."""
    out = Output.start(json_out)
    with connect(ctx, out) as client:
        job = client.job(job_id)
        if wait:
            job = follow(client, job, out)
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
