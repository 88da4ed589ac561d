"""Datasets: `c2d dataset add`, `list` (the owner's), `show` and `mock` (a researcher's too).

`show` prints a dataset's schema as the caller may see it (the owner all of it, researchers the
policy's level); `mock` writes synthetic files with the same layout, names, columns and types,
made on this machine from that schema alone (`runner.client.mock`), so nothing of the data is in
them beyond what the schema shows. `c2d run DIR --mock` (`runner.cli.run_local`) runs a job on
them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from jobs.safe_text import one_line
from runner.cli.dataset_checks import (
    AllowTypes,
    MaxFileSize,
    MaxRows,
    MetricNames,
    MinCell,
    describe_checks,
    merged_checks,
)
from runner.cli.options import build_settings
from runner.cli.output import JsonFlag, Output
from runner.cli.session import connect

app = typer.Typer(help="Register, list, show and mock datasets.", no_args_is_help=True)


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


def _hashing_progress(doing: str, update: Callable[[str], None]) -> Callable[[int, int], None]:
    """A ``scan`` progress callback that shows the running totals at most once a second."""
    shown = [time.monotonic()]

    def progress(files: int, size: int) -> None:
        now = time.monotonic()
        if now - shown[0] >= 1.0:
            shown[0] = now
            update(f"{doing}: {files} files, {size / 2**20:,.0f} MiB so far...")

    return progress


@app.command("add")
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
            help="Hold each job's outputs for you to release (`c2d release`; the default), or "
            "release them as soon as the job succeeds and every output check passed.",
        ),
    ] = True,
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
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            help="This data host's state folder (default: C2D_HOME or ~/.c2d, or the one host "
            "under its hosts/).",
        ),
    ] = None,
    owner: Annotated[
        str | None,
        typer.Option("--owner", help="Register for this owner (admins only; default: you)."),
    ] = None,
    allow_types: AllowTypes = None,
    max_file_size: MaxFileSize = None,
    metric_names: MetricNames = None,
    min_cell: MinCell = None,
    max_rows: MaxRows = None,
    json_out: JsonFlag = False,
) -> None:
    """Register the folder PATH on this data host as dataset NAME: its files are hashed and
    profiled here and the host signs the digest; only that, the profile and the policy go to
    the control plane, never the path. Run it on the data host that holds PATH."""
    from jobs.models import DatasetPolicy
    from jobs.output_checks import OutputChecks
    from jobs.service_core import build
    from runner.host.datasets import attest_dataset, keep
    from runner.host.identity import find_host_home, load_identity, with_saved_roots
    from runner.host.registry import Registry

    out = Output.start(json_out)
    checks = merged_checks(
        OutputChecks().model_dump(mode="json"),
        allow_types, max_file_size, metric_names, min_cell, max_rows,
    )  # fmt: skip
    settings = build_settings(home=home)
    settings = with_saved_roots(build_settings(home=find_host_home(settings.home)))
    identity = load_identity(settings)
    registry = Registry(settings.registry_path)
    try:
        with connect(ctx, out) as client:
            policy = build(
                DatasetPolicy,
                owner=owner or client.me()["name"],
                host=identity.name,
                review_outputs=review_outputs,
                logs_visible=logs_visible.value,
                schema=schema.value,
                public_values=parse_public(public or []),
                max_metrics=max_metrics,
                checks=checks,
            )
            folder = path if path.is_absolute() else path.absolute()
            doing = f"hashing and profiling {one_line(str(folder))} on data host {identity.name}"
            with out.status(doing + "...") as update:
                attested = attest_dataset(
                    settings, registry, identity, name, folder, policy,
                    progress=_hashing_progress(doing, update),
                )  # fmt: skip
            dataset = client.add_dataset(
                name,
                identity.name,
                attested.wire(),
                owner=policy.owner,
                review_outputs=review_outputs,
                logs_visible=logs_visible.value,
                schema=schema.value,
                public_values=policy.public_values,
                max_metrics=max_metrics,
                checks=checks,
                policy=policy.public_dump(),
            )
            keep(registry, attested)
    finally:
        registry.close()
    out.say(
        f"registered dataset {dataset['name']} on data host {identity.name}: "
        f"{dataset.get('files')} files, {dataset.get('bytes')} bytes, {dataset.get('digest')}"
    )
    out.result(dataset, dataset["name"])


@app.command("list")
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


NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The dataset's name.")]


@app.command("checks")
def dataset_checks(
    ctx: typer.Context,
    name: NameArg,
    allow_types: AllowTypes = None,
    max_file_size: MaxFileSize = None,
    metric_names: MetricNames = None,
    min_cell: MinCell = None,
    max_rows: MaxRows = None,
    json_out: JsonFlag = False,
) -> None:
    """Show or change the automatic checks the data host runs on each succeeded job's outputs
    (they warn you before you release; options not given stay as they are)."""
    out = Output.start(json_out)
    with connect(ctx, out) as client:
        current = (client.dataset(name).get("policy") or {}).get("checks") or {}
        wanted = merged_checks(
            current, allow_types, max_file_size, metric_names, min_cell, max_rows
        )
        if wanted != current:
            dataset = client.set_checks(name, wanted)
            current = (dataset.get("policy") or {}).get("checks") or {}
            out.say(f"changed the output checks of dataset {one_line(name)}; they apply to runs "
                    "that finish from now on")  # fmt: skip
    for line in describe_checks(current):
        out.say(line)
    out.result(current)


LEVELS = {
    "hidden": "file names and sizes only",
    "columns": "names and types, no values",
    "stats": "names, types, ranges and moments",
}
MAX_VALUES_SHOWN = 6


def _range(col: dict[str, Any]) -> str | None:
    if "min" in col or "max" in col:
        return f"{col.get('min')} .. {col.get('max')}"
    if "min_length" in col:
        return f"length {col['min_length']} .. {col['max_length']}"
    return None


def _moments(col: dict[str, Any]) -> str | None:
    if "mean" not in col:
        return None
    std = f" ± {col['std']:.4g}" if isinstance(col.get("std"), int | float) else ""
    return f"{col['mean']:.4g}{std}"


def _values(col: dict[str, Any]) -> str | None:
    values = col.get("values")
    if values is None:
        return None
    shown = ", ".join(str(v) for v in values[:MAX_VALUES_SHOWN])
    return shown + (f", ... ({len(values)})" if len(values) > MAX_VALUES_SHOWN else "")


def _type(col: dict[str, Any]) -> str:
    kind = str(col["dtype"]) + (" (date)" if col.get("date_only") else "")
    return kind + (", key" if col.get("key") else "")


_CELLS = (
    ("values (public)", _values),
    ("range", _range),
    ("mean ± std", _moments),
    ("distinct", lambda c: c.get("distinct")),
    ("nulls", lambda c: c.get("nulls")),
)


def show_file(out: Output, entry: dict[str, Any]) -> None:
    """One file of a schema: a header line and, for a table, its columns."""
    rows = entry.get("rows")
    counted = "" if rows is None else f", {rows} rows" + ("" if entry.get("rows_exact") else "+")
    out.say(f"{one_line(entry['path'])}  ({entry['format']}, {entry['bytes']} bytes{counted})")
    if entry.get("problem"):
        out.say(f"  could not be read: {one_line(entry['problem'])}")
    columns = entry.get("columns")
    if not columns:
        return
    extra = [(title, cell) for title, cell in _CELLS if any(cell(c) is not None for c in columns)]
    table = [
        [c["name"], _type(c), "yes" if c["nullable"] else "no", *(cell(c) for _, cell in extra)]
        for c in columns
    ]
    out.table(["column", "type", "nulls allowed", *(t for t, _ in extra)], table, "")


def show_schema(out: Output, doc: dict[str, Any]) -> None:
    """The people view of a schema document."""
    level = doc["schema"]
    whose = "you own it: the whole profile" if doc.get("full") else f"{LEVELS.get(level, level)}"
    out.say(f"dataset {doc['dataset']}  {doc['dataset_digest']}")
    out.say(f"schema policy: {level} ({whose})")
    for entry in doc["profile"]["files"]:
        out.say("")
        show_file(out, entry)
    out.say("")
    if level == "hidden" and not doc.get("full"):
        out.hint("the owner keeps the columns hidden; ask them for a description of the files")
    else:
        out.hint(f"make mock data to develop against: `c2d dataset mock {doc['dataset']} -o DIR`")


@app.command("show")
def dataset_show(ctx: typer.Context, name: NameArg, json_out: JsonFlag = False) -> None:
    """Show a dataset's files and columns, as much as its policy lets you see."""
    out = Output.start(json_out)
    with connect(ctx, out) as client:
        doc = client.schema(name)
    show_schema(out, doc)
    out.result(doc)


@app.command("mock")
def dataset_mock(
    ctx: typer.Context,
    name: NameArg,
    out_dir: Annotated[
        Path,
        typer.Option("--out", "-o", metavar="DIR", help="Where to write (new or empty folder)."),
    ],
    rows: Annotated[
        int | None,
        typer.Option("--rows", min=0, help="Rows per table (default: the dataset's counts)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Same seed, same files.")] = 0,
    json_out: JsonFlag = False,
) -> None:
    """Write synthetic files shaped like dataset NAME (no real value in them); print the digest."""
    from runner.client.mock import mock_from_schema

    out = Output.start(json_out)
    with connect(ctx, out) as client:
        doc = client.schema(name)
    result = mock_from_schema(doc, out_dir, rows=rows, seed=seed)
    for f in result.files:
        counted = f", {f.rows} rows" if f.rows is not None else ""
        out.say(f"wrote {one_line(out_dir / f.path)} ({f.bytes} bytes{counted})")
    out.say(
        f"mock data for {name} at level {result.level}, seed {result.seed}: {result.digest} "
        "(made from the schema alone: nothing of the data beyond what the schema shows)"
    )
    out.hint(f"run a job on it: `c2d run JOB_DIR --mock {out_dir}`")
    out.result(
        {"dataset": name, "folder": str(out_dir), **result.model_dump(mode="json")}, result.digest
    )
