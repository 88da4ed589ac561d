"""A job folder run on the researcher's own machine, in the data host's sandbox, on mock data.

``run_local(job_dir, mock_dir, ...)`` is ``c2d run DIR --mock ...`` without the printing:

1. **/outputs**: as root, the sandbox caps it with a loop-mounted filesystem, as on the data
   host; without root (a laptop with Docker Desktop or rootless Docker) it is a tmpfs volume
   of the same size that the Docker engine mounts (``TmpfsOutputsExecutor``): the same cap,
   held in memory instead of on disk.
2. **The job** is read and checked as ``c2d submit`` reads it (``job.yaml`` with the same
   ``--dataset`` and ``--param`` overrides), and the folder is packed into the same
   deterministic bundle (``.c2dignore`` applies), so the code that runs is exactly the code a
   submission would send, with the same digest. It is extracted into a temporary folder.
3. **The image** is the job's environment resolved on the local Docker engine, never pulled
   (``make image`` builds it).
4. **The sandbox** is ``DockerExecutor`` with its hardened defaults and a ``SandboxSpec`` built
   like the data host's: the job's resources as limits, the mock folder read-only at
   ``/data/NAME``, the code at ``/code``, the params at ``/job/params.json``, ``/outputs``
   capped, the same collector. Only the data differs: the mock folder, never private data.
5. **Outputs** the collector accepted are copied to ``keep`` (if given); everything else of
   the run (container, work folder, extracted code) is removed, also on Ctrl-C.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker

from jobs.bundle import DEFAULT_MAX_BYTES, DEFAULT_MAX_FILES, extract, pack
from jobs.datasets import scan
from jobs.errors import SpecError
from jobs.models import JobSpec
from ledger.kinds import ErrorKind
from runner.artifacts import ArtifactStore
from runner.errors import RunnerError
from runner.host.images.environments import resolve
from runner.host.sandbox.docker import DockerExecutor
from runner.host.sandbox.interface import RunResult
from runner.host.sandbox.specs import Sandboxing, sandbox_spec
from runner.host.sandbox.tmpfs_outputs import TmpfsOutputsExecutor


class LocalRunInvalid(RunnerError):
    """The job cannot be run locally as given (no dataset name, its own image)."""

    kind = ErrorKind.INVALID


@dataclass(frozen=True)
class LocalRun:
    """What a local run did: its result, and what it ran on."""

    result: RunResult
    job: JobSpec
    dataset: str
    code_digest: str
    image_id: str
    mock_digest: str
    kept: Path | None


def mounts_outputs() -> bool:
    """Whether this process may loop-mount the capped ``/outputs`` as the data host does
    (root); otherwise a local run puts it on a tmpfs volume the engine mounts."""
    return os.geteuid() == 0


def load_job(
    job_dir: Path, dataset: str | None, params: dict[str, Any], mocked: str | None
) -> JobSpec:
    """``DIR/job.yaml`` with the overrides, as ``c2d submit`` reads it.

    The dataset name decides ``/data/NAME``: ``dataset`` (``--dataset``) if given, else the
    dataset the mock was made from (``mocked``), else ``job.yaml``'s.
    """
    spec_file = job_dir / "job.yaml"
    spec = JobSpec.from_yaml(spec_file).with_overrides(
        dataset=dataset or mocked or None, params=params or None
    )
    if spec.dataset is None:
        raise SpecError(
            f"{spec_file}: no dataset name, so no /data/NAME to mount the mock data at; add "
            "`dataset: NAME` or pass --dataset NAME",
            file=str(spec_file),
            field="dataset",
            allowed="the name of the dataset the job will run on",
        )
    if spec.image is not None:
        raise LocalRunInvalid(
            "this job brings its own image (`image: {build: ...}`), which `c2d run` does not "
            "build; submit it: the data host builds the image and dry-runs the job on mock data"
        )
    return spec


def run_local(
    client: docker.DockerClient,
    spec: JobSpec,
    job_dir: Path,
    mock_dir: Path,
    *,
    sandboxing: Sandboxing,
    keep: Path | None = None,
    tmpfs_outputs: bool | None = None,
) -> LocalRun:
    """Run ``spec`` (read from ``job_dir``) on ``mock_dir`` in the local sandbox.

    ``tmpfs_outputs`` puts ``/outputs`` on a capped tmpfs volume (default: when this process
    cannot mount, see ``mounts_outputs``). Raises environment errors (no such environment,
    image not built: `make image`), ``BundleError``/``TooLarge`` (the folder cannot be
    packed), ``DatasetError`` (a link in the mock folder), ``SandboxError``.
    """
    if tmpfs_outputs is None:
        tmpfs_outputs = not mounts_outputs()
    assert spec.dataset is not None
    mock_digest = scan(mock_dir).digest
    image_id = resolve(client, spec.environment)
    bundle = pack(job_dir)
    scratch = Path(tempfile.mkdtemp(prefix="c2d-run-"))
    try:
        code = scratch / "code"
        extract(bundle.data, code, DEFAULT_MAX_FILES, DEFAULT_MAX_BYTES)
        code.chmod(0o755)
        sandbox = sandbox_spec(
            spec,
            sandbox_id=f"local-{secrets.token_hex(6)}",
            image_id=image_id,
            code_dir=code,
            datasets={spec.dataset: mock_dir.resolve()},
            sandboxing=sandboxing,
        )
        store = ArtifactStore(scratch / "outputs")
        kind = TmpfsOutputsExecutor if tmpfs_outputs else DockerExecutor
        result = kind(client, scratch / "work").run(sandbox, store)
        kept = _keep(result, store, keep) if keep is not None else None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return LocalRun(result, spec, spec.dataset, bundle.digest, image_id, mock_digest, kept)


def _keep(result: RunResult, store: ArtifactStore, folder: Path) -> Path:
    """Copy the accepted outputs into ``folder`` (created; existing files are replaced)."""
    for output in result.outputs:
        target = folder / output.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(store.path(output.sha256), target)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
