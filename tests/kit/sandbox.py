"""Helpers of the sandbox integration tests: a real DockerExecutor beside a dataset holding a
secret, jobs written as Python scripts, and probes that report what they saw from inside.

Every job a test starts goes through ``Sandbox``, which cleans up whatever the test leaves (the
executor labels its containers ``c2d.job``; the kit removes them by job id).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from runner.artifacts import ArtifactStore
from runner.host.sandbox import Limits, RunResult, SandboxSpec
from runner.host.sandbox.docker import DockerExecutor
from runner.host.sandbox.hardening import LABEL_JOB, container_name
from tests.kit.recorder import interface_addresses

MiB = 1024 * 1024
RUNTIMES = ["runc", "runsc"]
SECRET = b"patient_id,diagnosis\n4711,c2d-secret-row-7f3a9\n"
PROBE_TAG = "C2D-PROBE "
SMALL = Limits(
    cpus=1.0,
    memory_bytes=512 * MiB,
    timeout_s=60,
    outputs_bytes=4 * MiB,
    tmp_bytes=16 * MiB,
    pids=128,
)

PROBE_HELPERS = r'''
import errno, json, os, socket

def attempt(fn):
    """'ok' if fn ran, else the errno name (or exception type) that stopped it."""
    try:
        fn()
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, type(e).__name__) if e.errno else type(e).__name__
    except Exception as e:
        return type(e).__name__

def tcp(host, port, timeout=3):
    def go():
        with socket.create_connection((host, port), timeout=timeout):
            pass
    return attempt(go)

def report(**found):
    print("C2D-PROBE " + json.dumps(found), flush=True)
'''


def pick_runtime(name: str, runsc_available: bool) -> str:
    """The runtime of a parametrized test; runsc is skipped where it is not registered."""
    if name == "runsc" and not runsc_available:
        pytest.skip("gVisor (runsc) is not registered with this Docker engine")
    return name


def host_addresses() -> list[str]:
    """The host's non-loopback IPv4 addresses, Docker's bridge excluded."""
    return [address for device, address in interface_addresses() if device != "docker0"]


@dataclass
class Sandbox:
    """A DockerExecutor, an artifact store and a dataset folder ``ds`` holding ``SECRET``."""

    client: docker.DockerClient
    image: str
    root: Path
    runtime: str
    jobs: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.executor = DockerExecutor(self.client, self.root / "work")
        self.store = ArtifactStore(self.root / "store")
        self.data = self.root / "data"
        self.data.mkdir(mode=0o755)
        (self.data / "secret.csv").write_bytes(SECRET)

    def spec(
        self,
        script: str,
        *,
        outputs: Sequence[str] = (),
        limits: Limits = SMALL,
        command: Sequence[str] = ("python3", "job.py"),
        params: dict[str, Any] | None = None,
    ) -> SandboxSpec:
        job_id = f"t-{uuid.uuid4().hex[:12]}"
        self.jobs.append(job_id)
        code = self.root / "code" / job_id
        code.mkdir(parents=True)
        (code / "job.py").write_text(PROBE_HELPERS + script)
        return SandboxSpec(
            job_id=job_id,
            image_id=self.image,
            command=tuple(command),
            code_dir=code,
            datasets={"ds": self.data},
            params=params or {},
            outputs=tuple(outputs),
            limits=limits,
            runtime=self.runtime,  # type: ignore[arg-type]
        )

    def run(self, script: str, **kwargs: Any) -> RunResult:
        """Run a job to the end through ``Executor.run``; check it left no container."""
        spec = self.spec(script, **kwargs)
        result = self.executor.run(spec, self.store)
        assert self.containers_of(spec.job_id) == []
        return result

    def probe(self, script: str, **kwargs: Any) -> dict[str, Any]:
        """Run a probe job and return what it reported."""
        result = self.run(script, **kwargs)
        return reported(result)

    def containers_of(self, job_id: str) -> list[str]:
        found = self.client.containers.list(all=True, filters={"label": f"{LABEL_JOB}={job_id}"})
        try:
            self.client.containers.get(container_name(job_id))
            found.append(container_name(job_id))
        except docker.errors.NotFound:
            pass
        return [str(c) for c in found]

    def stored_files(self) -> Iterator[Path]:
        return (p for p in self.store.root.rglob("*") if p.is_file())

    def store_holds(self, needle: bytes) -> bool:
        return any(needle in p.read_bytes() for p in self.stored_files())

    def close(self) -> None:
        for job_id in self.jobs:
            self.executor.cleanup(job_id)


def reported(result: RunResult) -> dict[str, Any]:
    """The probe's report from a job's log (fails the test, showing the log, if absent)."""
    for line in result.log.decode(errors="replace").splitlines():
        if line.startswith(PROBE_TAG):
            found: dict[str, Any] = json.loads(line[len(PROBE_TAG) :])
            return found
    raise AssertionError(f"the probe reported nothing ({result.reason}); log:\n{result.log!r}")


def make_sandbox(
    request: pytest.FixtureRequest,
    docker_client: docker.DockerClient,
    job_image: str,
    runsc_available: bool,
    tmp_path: Path,
) -> Iterator[Sandbox]:
    """Body of each test module's parametrized ``sandbox`` fixture."""
    box = Sandbox(docker_client, job_image, tmp_path, pick_runtime(request.param, runsc_available))
    try:
        yield box
    finally:
        box.close()
