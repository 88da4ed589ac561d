"""The executor contract, checked alike on the Docker executor and the fake.

The same behaviours ("writes a model", "exits 3", "runs a little while", "runs forever") are a
script for Docker and a ``Script`` for the fake, so the layers above can trust tests written
against the fake. Docker runs under runc here; the security tests cover runsc.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import pytest

from runner.artifacts import ArtifactStore
from runner.errors import SandboxError
from runner.host.sandbox import Executor, Limits, SandboxSpec, State
from runner.host.sandbox.docker import DockerExecutor
from runner.host.sandbox.fake import FakeExecutor, FakeHost, Script
from runner.host.sandbox.hardening import LABEL_JOB

LIMITS = Limits(memory_bytes=256 * 1024**2, timeout_s=60, outputs_bytes=1024**2)
MODEL = b"model-bytes"

DOCKER_SCRIPTS = {
    "ok": f"import sys\nopen('/outputs/model.pkl', 'wb').write({MODEL!r})\nprint('trained')\n"
    "print('careful', file=sys.stderr)",
    "exit3": "raise SystemExit(3)",
    "slow": f"import time\ntime.sleep(2)\nopen('/outputs/model.pkl', 'wb').write({MODEL!r})",
    "forever": "import time\ntime.sleep(3600)",
}
FAKE_SCRIPTS = {
    "ok": Script(files={"model.pkl": MODEL}, log=b"trained\ncareful\n"),
    "exit3": Script(exit_code=3),
    "slow": Script(files={"model.pkl": MODEL}, duration_s=2),
    "forever": Script(runs_forever=True),
}


@dataclass
class Impl:
    """One executor implementation, as the contract tests drive it."""

    name: str
    new_executor: Callable[[], Executor]
    spec: Callable[..., SandboxSpec]
    containers: Callable[[str], int]
    store: ArtifactStore
    image: str


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def code_dir(root: Path, job_id: str, script: str) -> Path:
    path = root / "code" / job_id
    path.mkdir(parents=True)
    (path / "job.py").write_text(script)
    return path


def docker_impl(root: Path, client: docker.DockerClient, image: str) -> Impl:
    def spec(behaviour: str, image_id: str = image, limits: Limits = LIMITS) -> SandboxSpec:
        job_id = f"c-{uuid.uuid4().hex[:12]}"
        code = code_dir(root, job_id, DOCKER_SCRIPTS[behaviour])
        return SandboxSpec(
            job_id, image_id, ("python3", "job.py"), code, outputs=("model.pkl",), limits=limits
        )

    def containers(job_id: str) -> int:
        return len(client.containers.list(all=True, filters={"label": f"{LABEL_JOB}={job_id}"}))

    return Impl(
        "docker", lambda: DockerExecutor(client, root / "work"), spec, containers,
        ArtifactStore(root / "store"), image,
    )  # fmt: skip


def fake_impl(root: Path) -> Impl:
    host, clock, scripts = FakeHost(), Clock(), {}
    image = "sha256:" + "fa" * 32

    def spec(behaviour: str, image_id: str = image, limits: Limits = LIMITS) -> SandboxSpec:
        job_id = f"c-{uuid.uuid4().hex[:12]}"
        scripts[job_id] = FAKE_SCRIPTS[behaviour]
        code = code_dir(root, job_id, "")
        return SandboxSpec(
            job_id, image_id, ("python3", "job.py"), code, outputs=("model.pkl",), limits=limits
        )

    def new_executor() -> Executor:
        return FakeExecutor(
            root / "work", scripts, host=host, images={image}, clock=clock, sleep=clock.sleep
        )

    return Impl(
        "fake", new_executor, spec, lambda job_id: int(job_id in host.containers),
        ArtifactStore(root / "store"), image,
    )  # fmt: skip


@pytest.fixture(params=["fake", pytest.param("docker", marks=pytest.mark.docker)])
def impl(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Impl]:
    if request.param == "fake":
        yield fake_impl(tmp_path)
        return
    client = request.getfixturevalue("docker_client")
    made = docker_impl(tmp_path, client, request.getfixturevalue("job_image"))
    yield made
    leftovers = DockerExecutor(client, tmp_path / "work")
    for job in (tmp_path / "code").iterdir() if (tmp_path / "code").exists() else []:
        leftovers.cleanup(job.name)


def test_run_reports_a_success_and_a_failure(impl: Impl) -> None:
    ok = impl.new_executor().run(impl.spec("ok"), impl.store)
    assert ok.succeeded, ok.reason
    assert [o.name for o in ok.outputs] == ["model.pkl"]
    assert impl.store.path(ok.outputs[0].sha256).read_bytes() == MODEL
    assert sorted(ok.log.splitlines()) == [b"careful", b"trained"]  # stdout and stderr
    failed = impl.new_executor().run(impl.spec("exit3"), impl.store)
    assert not failed.succeeded
    assert failed.reason == "exited with code 3"
    assert failed.outputs == ()


def test_steps_are_idempotent_and_a_restarted_worker_adopts(impl: Impl) -> None:
    spec = impl.spec("slow")
    first = impl.new_executor()
    assert first.status(spec.job_id) is State.ABSENT
    assert first.prepare(spec) is State.PREPARED
    assert first.prepare(spec) is State.PREPARED
    assert first.start(spec) is State.RUNNING

    second = impl.new_executor()  # the worker restarted while the job ran
    assert second.prepare(spec) is State.RUNNING
    assert second.start(spec) is State.RUNNING
    assert impl.containers(spec.job_id) == 1
    assert second.wait(spec.job_id) is State.EXITED
    assert second.wait(spec.job_id, timeout=1) is State.EXITED
    once = second.collect(spec, impl.store)
    twice = second.collect(spec, impl.store)
    assert once.succeeded, once.reason
    assert once.outputs == twice.outputs
    second.cleanup(spec.job_id)
    second.cleanup(spec.job_id)
    assert second.status(spec.job_id) is State.ABSENT
    assert impl.containers(spec.job_id) == 0


def test_whoever_waits_enforces_the_deadline(impl: Impl) -> None:
    spec = impl.spec("forever", limits=dataclasses.replace(LIMITS, timeout_s=2))
    first = impl.new_executor()
    first.prepare(spec)
    first.start(spec)
    assert first.wait(spec.job_id, timeout=0.5) is State.RUNNING
    second = impl.new_executor()
    with ThreadPoolExecutor(2) as pool:  # two workers both wait out the deadline, both kill
        waits = [pool.submit(ex.wait, spec.job_id) for ex in (first, second)]
        assert [w.result() for w in waits] == [State.EXITED, State.EXITED]
    result = second.collect(spec, impl.store)
    assert result.timed_out
    assert result.reason == "killed: timed out after 2 s"
    second.cleanup(spec.job_id)
    assert impl.containers(spec.job_id) == 0


def test_steps_out_of_order_are_refused(impl: Impl) -> None:
    spec = impl.spec("forever", limits=dataclasses.replace(LIMITS, timeout_s=5))
    ex = impl.new_executor()
    with pytest.raises(SandboxError, match="not prepared"):
        ex.start(spec)
    ex.prepare(spec)
    ex.start(spec)
    with pytest.raises(SandboxError, match="has not exited"):
        ex.collect(spec, impl.store)
    ex.cleanup(spec.job_id)
    assert impl.containers(spec.job_id) == 0


def test_an_image_not_on_the_host_is_refused_never_pulled(impl: Impl) -> None:
    missing = "sha256:" + "0d" * 32
    spec = impl.spec("ok", image_id=missing)
    with pytest.raises(SandboxError, match="never pulls"):
        impl.new_executor().prepare(spec)
    assert impl.new_executor().status(spec.job_id) is State.ABSENT
    if impl.name == "docker":
        client = docker.from_env()
        with pytest.raises(docker.errors.ImageNotFound):
            client.images.get(missing)
        client.close()
