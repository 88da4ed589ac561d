"""Starting a job: `c2d new DIR` writes a job folder that runs as it is on mock data, and
`c2d schema job` prints the JSON Schema of `job.yaml` for editors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from runner.cli.options import RESEARCHER
from runner.cli.output import JsonFlag, Output
from runner.errors import UsageError

app = typer.Typer()
schema_app = typer.Typer(help="JSON Schemas of c2d's files, for editors.", no_args_is_help=True)
app.add_typer(schema_app, name="schema", rich_help_panel=RESEARCHER)

JOB_YAML = """\
# A c2d job: what runs, beside which dataset, within which limits.
# Fields: `c2d schema job` prints their JSON Schema; README "The job folder" explains them.
name: {name}
environment: python-ml          # the image it runs in (`c2d env list`)
command: python3 train.py       # a line split like a shell's, or a list
{dataset_line}
params:                         # /job/params.json in the container; `--param k=v` overrides
  seed: 0
resources:
  cpus: 1
  memory: 1GiB
  timeout: 10m
  outputs: 100MiB
outputs: []                     # files under /outputs that may leave; metrics.json always may
"""

TRAIN_PY = '''\
"""{name}: a job that runs as it is on mock data (`c2d run . --mock DIR_OR_DATASET`).

It reads its dataset under /data/NAME (read-only), its params from /job/params.json, and
writes metrics.json (a flat object of numbers) to /outputs. Replace the counting with your
training; write model files to /outputs and list them under `outputs:` in job.yaml.
"""

import csv
import json
from pathlib import Path

DATA = Path("/data")
OUTPUTS = Path("/outputs")
params = json.loads(Path("/job/params.json").read_text())

files = rows = 0
for path in sorted(p for p in DATA.rglob("*") if p.is_file()):
    files += 1
    if path.suffix == ".csv":
        with path.open(newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, [])
            counted = sum(1 for _ in reader)
        rows += counted
        print(f"{{path.relative_to(DATA)}}: {{counted}} rows, columns {{', '.join(header)}}")
    else:
        print(f"{{path.relative_to(DATA)}}: {{path.stat().st_size}} bytes")

print(f"params: {{params}}")
(OUTPUTS / "metrics.json").write_text(json.dumps({{"files": files, "rows": rows}}))
'''

README = """\
# {name}

A c2d job folder made by `c2d new`.

```sh
c2d dataset show DATASET                 # what the owner lets you see of the data
c2d run . --mock DATASET                 # run it here on mock data made from that schema
c2d submit . --dataset DATASET --wait    # run it beside the real data, once approved
```
"""


@app.command("new", rich_help_panel=RESEARCHER)
def new(
    folder: Annotated[Path, typer.Argument(metavar="DIR", help="The folder to create.")],
    dataset: Annotated[
        str | None, typer.Option("--dataset", "-d", help="The dataset it runs on.")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="The job's name (default: DIR).")
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Write a job folder (job.yaml, train.py, README.md) that runs as it is on mock data."""
    from jobs.spec import JobSpec

    out = Output.start(json_out)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise UsageError(f"{folder} exists and is not an empty folder; name a new one")
    job_name = name or folder.resolve().name
    dataset_line = (
        f"dataset: {dataset}" if dataset else "# dataset: NAME               # or `--dataset NAME`"
    )
    files = {
        "job.yaml": JOB_YAML.format(name=job_name, dataset_line=dataset_line),
        "train.py": TRAIN_PY.format(name=job_name),
        "README.md": README.format(name=job_name),
    }
    JobSpec.parse_yaml(files["job.yaml"], source=str(folder / "job.yaml"))  # a bad name says so
    folder.mkdir(parents=True, exist_ok=True)
    for file_name, text in files.items():
        (folder / file_name).write_text(text, encoding="utf-8")
    out.say(f"wrote {', '.join(files)} into {folder}")
    target = dataset or "DATASET"
    out.hint(f"try it on mock data: `c2d run {folder} --mock {target}`")
    out.result({"dir": str(folder), "files": sorted(files), "name": job_name}, str(folder))


@schema_app.command("job")
def schema_job(json_out: JsonFlag = False) -> None:
    """Print the JSON Schema of job.yaml on stdout (for an editor's YAML language server)."""
    from jobs.spec import JobSpec

    out = Output.start(json_out)
    schema = JobSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema.setdefault("title", "c2d job.yaml")
    if json_out:
        out.result(schema)
    else:
        out.stdout.write(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        out.hint(
            "save it, then point your editor at it, e.g. `# yaml-language-server: $schema=FILE`"
        )
