"""Data and job folders the suites and the benchmarks make: small, readable by the sandbox.

``readable`` makes a folder readable by the job's unprivileged uid, as data owners are told to;
``make_dataset`` writes a small CSV (``rows.csv``: ``x,y``) into one; ``job_folder`` writes a
job.yaml that runs ``command`` in python-ml, and ``script_job`` one that runs a Python script.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml


def readable(folder: Path) -> Path:
    """Make ``folder`` and everything in it readable by the sandbox's non-root user."""
    folder.chmod(0o755)
    for path in folder.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return folder


def make_dataset(folder: Path, rows: int = 50) -> Path:
    """A small CSV dataset (``rows.csv``, columns x and y) the sandbox can read."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rows.csv").write_text("x,y\n" + "".join(f"{i},{i % 7}\n" for i in range(rows)))
    return readable(folder)


def job_folder(
    folder: Path,
    command: Sequence[str],
    *,
    name: str = "test",
    cpus: float = 0.5,
    memory: str = "256MiB",
    timeout: str = "2m",
    outputs: str = "1MiB",
    declared: Sequence[str] = (),
    dataset: str | None = None,
    params: dict[str, object] | None = None,
) -> Path:
    """A job folder whose job.yaml runs ``command`` in python-ml with these resources."""
    folder.mkdir(parents=True, exist_ok=True)
    spec: dict[str, object] = {
        "name": name,
        "environment": "python-ml",
        "command": list(command),
        "resources": {"cpus": cpus, "memory": memory, "timeout": timeout, "outputs": outputs},
        "outputs": list(declared),
    }
    if dataset is not None:
        spec["dataset"] = dataset
    if params is not None:
        spec["params"] = params
    (folder / "job.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return folder


def script_job(folder: Path, script: str, **kwargs: object) -> Path:
    """A job folder that runs ``script`` as ``python3 run.py`` (see ``job_folder``)."""
    made = job_folder(folder, ("python3", "run.py"), **kwargs)  # type: ignore[arg-type]
    (made / "run.py").write_text(script)
    return made


def sleeper(seconds: float) -> str:
    """A job script that prints, sleeps ``seconds``, then writes a metric."""
    return (
        "import json, pathlib, time\n"
        "print('started', flush=True)\n"
        f"time.sleep({seconds})\n"
        "pathlib.Path('/outputs/metrics.json').write_text(json.dumps({'slept': "
        f"{seconds}}}))\n"
        "print('done', flush=True)\n"
    )


SLEEPER = """\
import json, pathlib, time
params = json.loads(pathlib.Path("/job/params.json").read_text())
rows = pathlib.Path("/data").glob("*/rows.csv")
count = sum(len(p.read_text().splitlines()) - 1 for p in rows)
print("started", flush=True)
time.sleep(float(params.get("sleep", 0)))
pathlib.Path("/outputs/result.txt").write_text(f"rows={count}\\n")
pathlib.Path("/outputs/metrics.json").write_text(json.dumps({"rows": count}))
print("done", flush=True)
"""


def counting_job(folder: Path, dataset: str, sleep: float = 0.0, timeout: str = "2m") -> Path:
    """A job folder that counts the dataset's rows after sleeping ``sleep`` seconds."""
    return script_job(
        folder,
        SLEEPER,
        name="sleeper",
        dataset=dataset,
        params={"sleep": sleep},
        timeout=timeout,
        declared=("result.txt",),
    )
