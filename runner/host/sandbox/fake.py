"""A fake executor for unit tests of the layers above: scripted outcomes, the same contract.

Nothing runs. A ``Script`` says how the "container" ends (exit code, OOM, running until its
deadline), what it prints and what it leaves in ``/outputs``; the rest is real: the job folder
and ``/job/params.json`` are written, outputs go through the real collector into a real
``ArtifactStore``, the log is capped and marked like the Docker executor's, and reasons are the
same sentences. A ``FakeHost`` plays the engine: share one between two FakeExecutors to act out
a worker restart (the second adopts the first's "container").

Time comes from ``clock`` and passes through ``sleep``; give both from a fake clock to test
deadlines without waiting.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from runner.artifacts import ArtifactStore
from runner.errors import SandboxError
from runner.host.sandbox.interface import Executor, RunResult, SandboxSpec, State
from runner.host.sandbox.logs import LogBuffer
from runner.host.sandbox.results import RunFacts, result_of
from runner.host.sandbox.workdir import JobDir, job_dir


@dataclass(frozen=True)
class Script:
    """How a fake job runs. ``make`` may shape ``/outputs`` freely (links, fifos, folders)."""

    exit_code: int = 0
    files: Mapping[str, bytes] = field(default_factory=dict)
    make: Callable[[Path], None] | None = None
    log: bytes = b""
    oom: bool = False
    runs_forever: bool = False
    duration_s: float = 0.0


@dataclass
class FakeContainer:
    """The fake engine's record of one job's container."""

    job_id: str
    script: Script
    deadline: float
    timeout_s: int
    started: float | None = None
    finished: float | None = None
    killed_at_deadline: bool = False


@dataclass
class FakeHost:
    """The fake engine: containers by job id, and how many were ever created per job."""

    containers: dict[str, FakeContainer] = field(default_factory=dict)
    created: dict[str, int] = field(default_factory=dict)


class FakeExecutor(Executor):
    """Plays scripted jobs; ``scripts`` maps a job id to its Script, or is a function of the spec.

    ``images`` lists the image IDs "on this host" (None: every image is there).
    """

    def __init__(
        self,
        work_root: Path,
        scripts: Mapping[str, Script] | Callable[[SandboxSpec], Script] | None = None,
        *,
        host: FakeHost | None = None,
        images: set[str] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.work_root = Path(work_root)
        self.work_root.mkdir(parents=True, exist_ok=True)
        self.scripts = scripts if scripts is not None else {}
        self.host = host if host is not None else FakeHost()
        self.images = images
        self.clock = clock
        self.sleep = sleep

    def _dir(self, job_id: str) -> JobDir:
        return job_dir(self.work_root, job_id)

    def _script(self, spec: SandboxSpec) -> Script:
        if callable(self.scripts):
            return self.scripts(spec)
        return self.scripts.get(spec.job_id, Script())

    def _ended(self, c: FakeContainer) -> bool:
        if c.finished is not None:
            return True
        if c.started is None or c.script.runs_forever:
            return False
        end = c.started + c.script.duration_s
        if self.clock() >= end and end <= c.deadline:
            c.finished = end
        return c.finished is not None

    def status(self, job_id: str) -> State:
        c = self.host.containers.get(job_id)
        if c is None:
            return State.PREPARED if self._dir(job_id).is_prepared() else State.ABSENT
        if c.started is None:
            return State.PREPARED
        return State.EXITED if self._ended(c) else State.RUNNING

    def prepare(self, spec: SandboxSpec) -> State:
        state = self.status(spec.job_id)
        if state in (State.RUNNING, State.EXITED):
            return state
        if self.images is not None and spec.image_id not in self.images:
            raise SandboxError(
                f"image {spec.image_id} is not on this host and c2d never pulls images; build "
                "the job's environment here (`make image`) and submit again"
            )
        if not spec.code_dir.is_dir():
            raise SandboxError(f"the job's code folder {spec.code_dir} does not exist")
        for name, path in spec.datasets.items():
            if not path.is_dir():
                raise SandboxError(f"dataset {name}'s folder {path} does not exist on this host")
        jd = self._dir(spec.job_id)
        jd.job.mkdir(parents=True, exist_ok=True)
        (jd.job / "params.json").write_bytes(spec.params_json())
        jd.outputs.mkdir(exist_ok=True)
        jd.prepared.touch()
        return State.PREPARED

    def start(self, spec: SandboxSpec, deadline: float | None = None) -> State:
        c = self.host.containers.get(spec.job_id)
        if c is None:
            jd = self._dir(spec.job_id)
            if not jd.is_prepared():
                raise SandboxError(f"job {spec.job_id} is not prepared on this host")
            now = self.clock()
            deadline = now + spec.limits.timeout_s if deadline is None else deadline
            c = FakeContainer(spec.job_id, self._script(spec), deadline, round(deadline - now))
            self.host.containers[spec.job_id] = c
            self.host.created[spec.job_id] = self.host.created.get(spec.job_id, 0) + 1
        if c.started is None:
            c.started = self.clock()
            outputs = self._dir(spec.job_id).outputs
            for name, data in c.script.files.items():
                (outputs / name).parent.mkdir(parents=True, exist_ok=True)
                (outputs / name).write_bytes(data)
            if c.script.make is not None:
                c.script.make(outputs)
        return self.status(spec.job_id)

    def wait(self, job_id: str, timeout: float | None = None) -> State:
        c = self.host.containers.get(job_id)
        if c is None or c.started is None:
            return self.status(job_id)
        give_up = None if timeout is None else self.clock() + timeout
        while not self._ended(c):
            now = self.clock()
            if now >= c.deadline:
                c.killed_at_deadline = True
                c.finished = c.deadline
                break
            until = c.deadline
            if not c.script.runs_forever:
                until = min(until, c.started + c.script.duration_s)
            if give_up is not None:
                if give_up <= now:
                    return State.RUNNING
                until = min(until, give_up)
            self.sleep(max(until - now, 0.0))
        return State.EXITED

    def collect(self, spec: SandboxSpec, store: ArtifactStore) -> RunResult:
        c = self.host.containers.get(spec.job_id)
        if c is None or not self._ended(c):
            raise SandboxError(f"job {spec.job_id} has not exited; wait for it before collecting")
        buffer = LogBuffer(spec.limits.log_bytes)
        buffer.feed(c.script.log)
        log, truncated = buffer.render()
        killed = c.killed_at_deadline
        oom = c.script.oom and not killed
        facts = RunFacts(
            exit_code=137 if killed or oom else c.script.exit_code,
            oom=oom,
            timed_out=killed,
            timeout_s=c.timeout_s,
            duration_s=(c.finished or 0.0) - (c.started or 0.0),
            log=log,
            log_truncated=truncated,
        )
        return result_of(spec, facts, self._dir(spec.job_id).outputs, store)

    def cleanup(self, job_id: str) -> None:
        self.host.containers.pop(job_id, None)
        shutil.rmtree(self._dir(job_id).root, ignore_errors=True)
