"""Developing against data you cannot see: `c2d dataset show` and `c2d dataset mock`.

`show` prints a dataset's schema as the caller may see it (the owner all of it, researchers the
policy's level); `mock` writes synthetic files with the same layout, names, columns and types,
made on this machine from that schema alone (`jobs.mock`), so nothing of the data is in them
beyond what the schema shows. `c2d run DIR --mock` (`runner.cli.run_local`) runs a job on them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from jobs.safe_text import one_line
from runner.cli.output import JsonFlag, Output
from runner.cli.owner import dataset_app
from runner.cli.session import connect

if TYPE_CHECKING:
    # pandas and numpy come with these; every `c2d` command would pay for them at start-up.
    from jobs.mock import MockResult
    from jobs.profile import DatasetProfile, Level

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The dataset's name.")]
LEVELS = {
    "hidden": "file names and sizes only",
    "columns": "names and types, no values",
    "stats": "names, types, ranges and moments",
}
MAX_VALUES_SHOWN = 6


def mock_from_schema(
    doc: dict[str, Any], out_dir: Path, *, rows: int | None, seed: int
) -> MockResult:
    """Write mock data from a schema document (`GET /v1/datasets/NAME/schema`) into `out_dir`.

    A researcher's document is already the policy's view; the owner's is the whole profile,
    which is mocked at the level the data host's dry runs use, so both get the same files.
    Raises `NotAllowed` (exit 4) when the schema is hidden.
    """
    from jobs.mock import write_mock
    from jobs.profile import DatasetProfile

    profile = DatasetProfile.model_validate(doc["profile"])
    if doc.get("full"):
        level: Level = "columns" if doc["schema"] == "hidden" else doc["schema"]
        public = doc.get("public_values") or None
    else:
        level = profile.redacted_to or doc["schema"]
        public = shown_public(profile)
    return write_mock(profile, out_dir, level=level, rows=rows, seed=seed, public=public)


def shown_public(view: DatasetProfile) -> dict[str, list[str]]:
    """The public columns of a researcher's view: a view keeps values for those alone."""
    public: dict[str, list[str]] = {}
    for entry in view.files:
        names = [c.name for c in entry.columns or () if c.values is not None]
        if names:
            public[entry.path] = names
    return public


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


@dataset_app.command("show")
def dataset_show(ctx: typer.Context, name: NameArg, json_out: JsonFlag = False) -> None:
    """Show a dataset's files and columns, as much as its policy lets you see."""
    out = Output.start(json_out)
    with connect(ctx, out) as client:
        doc = client.schema(name)
    show_schema(out, doc)
    out.result(doc)


@dataset_app.command("mock")
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
