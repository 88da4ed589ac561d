"""`c2d run DIR --mock DIR_OR_DATASET`: try a job on your own machine, on mock data.

The job runs in the data host's sandbox (`runner.host.localrun`) against a mock folder: one you made
with `c2d dataset mock`, or one made now from the named dataset's schema. The log, outputs and
metrics are shown as the data owner would see them; nothing private is involved, and the
message says so with the mock data's digest.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from jobs.safe_text import one_line
from ledger.kinds import ExitCode
from runner.cli.options import RESEARCHER, ParamOption, parse_params
from runner.cli.output import JsonFlag, Output
from runner.cli.session import connect
from runner.errors import MissingFile, ServiceUnavailable

if TYPE_CHECKING:
    # The Docker SDK and the control plane come with these: imported when `c2d run` runs, so
    # every other command starts without them.
    from runner.host.localrun import LocalRun

app = typer.Typer()


def _document(run: LocalRun, source: str) -> dict[str, Any]:
    result = run.result
    return {
        "ok": result.succeeded,
        "reason": result.reason,
        "exit_code": result.exit_code,
        "oom": result.oom,
        "timed_out": result.timed_out,
        "duration_s": result.duration_s,
        "outputs": [{"name": o.name, "sha256": o.sha256, "bytes": o.bytes} for o in result.outputs],
        "ignored": list(result.ignored),
        "metrics": dict(result.metrics) if result.metrics is not None else None,
        "log": result.log.decode("utf-8", errors="replace"),
        "log_truncated": result.log_truncated,
        "dataset": run.dataset,
        "mock_digest": run.mock_digest,
        "mock_source": source,
        "code_digest": run.code_digest,
        "image_id": run.image_id,
        "kept": str(run.kept) if run.kept is not None else None,
        "private_data_used": False,
    }


def _show(out: Output, doc: dict[str, Any]) -> None:
    out.say("--- log (the job's stdout and stderr) ---")
    out.text_block(doc["log"] or "(empty)\n")
    out.say("--- end of log ---")
    verdict = "succeeded" if doc["ok"] else "failed"
    out.say(f"{verdict}: {one_line(doc['reason'])} ({doc['duration_s']:.1f} s)")
    outputs = ", ".join(f"{o['name']} ({o['bytes']} bytes)" for o in doc["outputs"])
    kept = f"; kept in {doc['kept']}" if doc["kept"] else ""
    out.fields(
        [
            ("outputs", (outputs or "none") + kept),
            ("metrics", json.dumps(doc["metrics"], sort_keys=True) if doc["metrics"] else None),
            ("not collected", ", ".join(doc["ignored"]) or None),
        ]
    )
    out.say(
        f"no private data was used: the job ran on this machine against mock data "
        f"{doc['mock_digest']} mounted at /data/{doc['dataset']}"
    )


@app.command("run", rich_help_panel=RESEARCHER)
def run(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(metavar="DIR", help="The job folder holding job.yaml.")],
    mock: Annotated[
        str,
        typer.Option(
            "--mock",
            metavar="DIR_OR_DATASET",
            help="A mock folder (`c2d dataset mock`), or a dataset name to mock from its schema.",
        ),
    ],
    dataset: Annotated[
        str | None, typer.Option("--dataset", "-d", help="Dataset name (overrides job.yaml).")
    ] = None,
    param: ParamOption = None,
    keep: Annotated[
        Path | None,
        typer.Option("--out", "-o", metavar="DIR", help="Copy the accepted outputs here."),
    ] = None,
    rows: Annotated[
        int | None,
        typer.Option("--rows", min=0, help="Rows per mock table, when mocking a dataset."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the mock data.")] = 0,
    tmpfs_outputs: Annotated[
        bool,
        typer.Option(
            "--tmpfs-outputs",
            help="Cap /outputs with a tmpfs volume the Docker engine mounts (the default "
            "without root: Docker Desktop, rootless Docker), not a loop-mounted filesystem.",
        ),
    ] = False,
    json_out: JsonFlag = False,
) -> None:
    """Run DIR here, in the data host's sandbox, on mock data: no private data is used."""
    from jobs.fields import NAME_PATTERN
    from runner.client.mock import mock_from_schema
    from runner.host.engine import docker_client
    from runner.host.localrun import Sandboxing, load_job, mounts_outputs, run_local
    from runner.settings import Settings

    out = Output.start(json_out)
    try:
        params = parse_params(param or [])
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--param") from exc
    in_memory = tmpfs_outputs or not mounts_outputs()
    mock_path = Path(mock)
    from_dataset = not mock_path.is_dir()
    if from_dataset and not re.match(NAME_PATTERN, mock):
        raise MissingFile(f"--mock {mock}: no such folder, and not a dataset name")
    spec = load_job(folder, dataset, params, mock if from_dataset else None)
    try:
        engine = docker_client()
    except ServiceUnavailable as exc:
        raise ServiceUnavailable(
            f"`c2d run` needs a local Docker engine and the job image: {exc}"
        ) from exc
    settings = Settings()
    sandboxing = Sandboxing.of(settings)
    with tempfile.TemporaryDirectory(prefix="c2d-mock-") as temp:
        if from_dataset:
            with connect(ctx, out) as client:
                doc = client.schema(mock)
            made = mock_from_schema(doc, Path(temp) / mock, rows=rows, seed=seed)
            out.say(f"made mock data for {mock} from its schema: {made.digest}")
            mock_path = Path(temp) / mock
        out.say(
            f"running {spec.name} on this machine in the c2d sandbox "
            f"(environment {spec.environment}), mock data at /data/{spec.dataset}"
        )
        if in_memory:
            out.say("/outputs is a tmpfs volume of the job's output limit (no mount needed)")
        result = run_local(
            engine,
            spec,
            folder,
            mock_path,
            sandboxing=sandboxing,
            keep=keep,
            tmpfs_outputs=in_memory,
        )
    doc = _document(result, "dataset" if from_dataset else "folder")
    _show(out, doc)
    if doc["ok"]:
        out.hint(f"submit it: `c2d submit {folder} --dataset {spec.dataset}`")
    out.result(doc)
    if not doc["ok"]:
        raise typer.Exit(ExitCode.FAILED)
