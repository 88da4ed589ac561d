"""Data owner commands: register datasets, review, approve, reject, release and trust jobs."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from jobs.fields import MAX_NOTE
from jobs.spec import Resources
from runner.cli.app import app
from runner.cli.dryrun_view import show_dryrun
from runner.cli.output import JsonFlag, Output
from runner.cli.own_image_view import show_own_image
from runner.cli.researcher import note_option, show_job
from runner.cli.session import connect

PANEL = "Data owner"
JobArg = Annotated[str, typer.Argument(metavar="JOB", help="The job id.")]

dataset_app = typer.Typer(help="Register, list, show and mock datasets.", no_args_is_help=True)
app.add_typer(dataset_app, name="dataset", rich_help_panel=PANEL)


class SchemaLevel(StrEnum):
    """How much of a dataset's shape researchers see (`c2d dataset show`)."""

    hidden = "hidden"
    columns = "columns"
    stats = "stats"


def parse_public(items: list[str]) -> dict[str, list[str]]:
    """`FILE:COLUMN` (or `COLUMN` for every file) strings -> the policy's `public_values`."""
    public: dict[str, list[str]] = {}
    for item in items:
        path, sep, column = item.rpartition(":")
        if not column:
            raise typer.BadParameter(f"{item!r} names no column", param_hint="--public")
        public.setdefault(path if sep else "*", []).append(column)
    return public


class LogsVisible(StrEnum):
    """Who may read a job's logs before its outputs are released."""

    owner = "owner"
    researcher = "researcher"


@dataset_app.command("add")
def dataset_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The dataset's name, used by jobs.")],
    path: Annotated[
        Path,
        typer.Argument(
            metavar="PATH",
            help="Its folder on the data host, inside one of the host's dataset roots "
            "(C2D_DATASET_ROOTS; relative: from here).",
        ),
    ],
    review_outputs: Annotated[
        bool,
        typer.Option(
            "--review-outputs/--release-on-success",
            help="Release each job's outputs by hand (`c2d release`), or as soon as it succeeds.",
        ),
    ] = False,
    logs_visible: Annotated[
        LogsVisible,
        typer.Option("--logs-visible", help="Who reads job logs before release."),
    ] = LogsVisible.owner,
    schema: Annotated[
        SchemaLevel,
        typer.Option(
            "--schema",
            help="What researchers see of the columns: hidden (file names only), columns "
            "(names and types), stats (plus ranges and moments).",
        ),
    ] = SchemaLevel.columns,
    public: Annotated[
        list[str] | None,
        typer.Option(
            "--public",
            metavar="FILE:COLUMN",
            help="A column whose real values researchers may see and mocks use (repeatable; "
            "COLUMN alone: in every file).",
        ),
    ] = None,
    max_metrics: Annotated[
        int,
        typer.Option(
            "--max-metrics",
            min=1,
            max=1000,
            help="Most keys a job's metrics.json may hold (each a short name).",
        ),
    ] = 100,
    json_out: JsonFlag = False,
) -> None:
    """Register the folder PATH as dataset NAME (its files are hashed and profiled; you own it);
    PATH must lie inside a dataset root of the host, apart from other owners' datasets."""
    out = Output.start(json_out)
    folder = str(path if path.is_absolute() else path.absolute())
    with connect(ctx, out) as client:
        dataset = client.add_dataset(
            name,
            folder,
            review_outputs=review_outputs,
            logs_visible=logs_visible.value,
            schema=schema.value,
            public_values=parse_public(public or []),
            max_metrics=max_metrics,
        )
    out.say(
        f"registered dataset {dataset['name']}: {dataset.get('files')} files, "
        f"{dataset.get('bytes')} bytes, {dataset.get('digest')}"
    )
    out.result(dataset, dataset["name"])


@dataset_app.command("list")
def dataset_list(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """List the registered datasets."""
    out = Output.start(json_out)
    with connect(ctx, out) as client:
        datasets = client.datasets()
    rows = [
        [
            d["name"],
            d.get("owner"),
            d.get("files"),
            d.get("bytes"),
            (d.get("policy") or {}).get("review_outputs"),
            str(d.get("digest", ""))[:19],
        ]
        for d in datasets
    ]
    out.table(
        ["name", "owner", "files", "bytes", "review outputs", "digest"],
        rows,
        empty="no datasets yet; an owner registers one with `c2d dataset add NAME PATH`",
    )
    out.result(datasets)


def _resources(value: Any) -> str:
    """Resources as people write them (`memory=1GiB ...`), or the raw JSON if unreadable."""
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
    out.hint(f"approve with `c2d approve {job_id}` or reject with `c2d reject {job_id} --reason`")
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
def release(ctx: typer.Context, job_id: JobArg, json_out: JsonFlag = False) -> None:
    """Release a succeeded job's outputs to its researcher."""
    out = Output.start(json_out)
    with connect(ctx, out) as client:
        job = client.release(job_id)
    out.say(f"released the outputs of job {job['id']}")
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


@app.command(rich_help_panel=PANEL)
def logs(ctx: typer.Context, job_id: JobArg, json_out: JsonFlag = False) -> None:
    """Print a job's container log (its stdout and stderr), control characters escaped."""
    # Escaped so that the log cannot redraw the reader's terminal; --json has the raw text.
    out = Output.start(json_out)
    with connect(ctx, out) as client:
        text, truncated = client.logs(job_id)
    if truncated:
        out.warn("the log was cut at its size cap; the end of the job's output is missing")
    out.result({"id": job_id, "log": text, "truncated": truncated}, text)
