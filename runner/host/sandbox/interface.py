"""The executor contract: what a sandbox promises the worker, whatever runs the container.

A job goes through five idempotent steps, each safe to repeat after a crash, so a worker that
restarts picks the job up where the host left it (adopting a running container, never starting a
second):

    prepare -> start -> wait (until EXITED) -> collect -> cleanup

``status`` tells where a job is on this host. ``Executor.run`` composes the steps for the common
case. ``DockerExecutor`` (``runner.host.sandbox.docker``) is the real one; ``FakeExecutor``
(``runner.host.sandbox.fake``) plays scripted outcomes for unit tests of the layers above.

What a spec cannot do is as important as what it can: it has no field to open a network, mount a
host path writable, add a capability, run as root or raise a limit past what its ``Limits`` say.
Those defaults live in the implementation, not in the spec.
"""

from __future__ import annotations

import json
import math
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from jobs.fields import check_relative_pattern
from runner.errors import SandboxError, SandboxSpecInvalid, TryLater

if TYPE_CHECKING:
    from runner.artifacts import ArtifactStore

MiB = 1024 * 1024
GiB = 1024 * MiB
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_IMAGE_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
Runtime = Literal["runc", "runsc"]


class State(StrEnum):
    """Where a job stands on this host."""

    ABSENT = "absent"  # nothing of the job here (never prepared, or cleaned up)
    PREPARED = "prepared"  # work folder and /outputs ready; no container started
    RUNNING = "running"  # its container is running
    EXITED = "exited"  # its container stopped; outputs and log wait for collect


def _invalid(message: str) -> SandboxSpecInvalid:
    return SandboxSpecInvalid(message)


@dataclass(frozen=True)
class Limits:
    """The resources one job may use. Every field is a cap; none can be turned off."""

    cpus: float = 1.0
    memory_bytes: int = 1 * GiB  # memory + swap (no swap); /tmp and /dev/shm count against it
    timeout_s: int = 600  # wall clock, from start to kill
    outputs_bytes: int = 100 * MiB  # total of /outputs, enforced by the filesystem and collector
    tmp_bytes: int = 256 * MiB  # size of the /tmp tmpfs
    pids: int = 256  # processes and threads (under runsc the sandbox's own threads count too)
    nofile: int = 1024  # open files per process
    log_bytes: int = 1 * MiB  # stdout + stderr kept
    max_output_files: int = 100
    max_metrics: int = 100  # keys of metrics.json (the dataset's policy)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.cpus) and self.cpus > 0):
            raise _invalid(f"cpus must be a number above 0, got {self.cpus}")
        floors = {
            "memory_bytes": 16 * MiB,
            "timeout_s": 1,
            "outputs_bytes": 1024,
            "tmp_bytes": 1 * MiB,
            "pids": 16,
            "nofile": 16,
            "log_bytes": 1024,
            "max_output_files": 1,
            "max_metrics": 1,
        }
        for name, floor in floors.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < floor:
                raise _invalid(f"limit {name} must be a whole number of at least {floor}")


@dataclass(frozen=True)
class SandboxSpec:
    """One job as the sandbox sees it: what to run, beside which data, within which limits.

    ``datasets`` maps a name to a host folder mounted read-only at ``/data/NAME``; ``code_dir``
    (the extracted bundle) is mounted read-only at ``/code``; ``params`` is written to
    ``/job/params.json`` (read-only); ``outputs`` are the names or globs collected from
    ``/outputs`` (``metrics.json`` always). ``uid``/``gid`` must not be 0. ``live_log`` asks
    the executor to publish the output as it comes (a run of an approved job on a dataset
    whose researcher may read logs at any time, ``jobs.access.live_log``; a dry run's log is
    never live).
    """

    job_id: str
    image_id: str
    command: tuple[str, ...]
    code_dir: Path
    datasets: Mapping[str, Path] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()
    limits: Limits = field(default_factory=Limits)
    runtime: Runtime = "runc"
    uid: int = 65534
    gid: int = 65534
    live_log: bool = False  # write the output live (``runner.livelog``) for its readers

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.job_id):
            raise _invalid(f"job id {self.job_id!r} must be 1-64 letters, digits, '.', '_', '-'")
        if not _IMAGE_RE.match(self.image_id):
            raise _invalid(
                f"image {self.image_id!r} must be a local image ID (sha256:<64 hex>); the "
                "sandbox runs only images pinned by ID and never pulls"
            )
        command = tuple(self.command)
        if not command or not all(isinstance(a, str) and a and "\0" not in a for a in command):
            raise _invalid("command must be a non-empty list of non-empty strings without NUL")
        object.__setattr__(self, "command", command)
        object.__setattr__(self, "code_dir", Path(self.code_dir))
        if not self.code_dir.is_absolute():
            raise _invalid(f"code folder {self.code_dir} must be an absolute path")
        datasets = {str(k): Path(v) for k, v in self.datasets.items()}
        for name, path in datasets.items():
            if not _NAME_RE.match(name):
                raise _invalid(f"dataset name {name!r} must be 1-64 letters, digits, '.', '_', '-'")
            if not path.is_absolute():
                raise _invalid(f"dataset {name}: {path} must be an absolute path")
        object.__setattr__(self, "datasets", MappingProxyType(datasets))
        try:
            json.dumps(dict(self.params), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise _invalid(f"params must be plain JSON: {exc}") from exc
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))
        outputs = tuple(self.outputs)
        for pattern in outputs:
            try:
                check_relative_pattern(pattern)
            except ValueError as exc:
                raise _invalid(f"output {pattern!r}: {exc}") from exc
        object.__setattr__(self, "outputs", outputs)
        if self.runtime not in ("runc", "runsc"):
            raise _invalid(f"runtime must be runc or runsc, got {self.runtime!r}")
        if self.uid <= 0 or self.gid <= 0:
            raise _invalid("jobs never run as root: uid and gid must be above 0")

    def params_json(self) -> bytes:
        """The bytes of ``/job/params.json`` (sorted keys, so equal params give equal bytes)."""
        return json.dumps(dict(self.params), sort_keys=True, indent=2).encode() + b"\n"


class OutputFile(NamedTuple):
    """One collected output: its path under /outputs, its ``sha256:`` digest and its size."""

    name: str
    sha256: str
    bytes: int


@dataclass(frozen=True)
class RunResult:
    """How a job ended and what it left, as the worker records it.

    ``reason`` is a sentence a person can act on (``exited with code 3``, ``killed: out of
    memory (limit 512 MiB)``, ``killed: timed out after 600 s``, ``output rejected: model.pkl is
    a symlink; ...``). ``log`` holds stdout and stderr up to the log limit, with a
    ``[c2d: ...]`` line where bytes were dropped (``log_truncated``).
    """

    exit_code: int | None
    oom: bool
    timed_out: bool
    reason: str
    duration_s: float
    outputs: tuple[OutputFile, ...] = ()
    metrics: Mapping[str, float] | None = None
    log: bytes = b""
    log_truncated: bool = False
    rejected: bool = False
    ignored: tuple[str, ...] = ()

    @property
    def succeeded(self) -> bool:
        """Exit code 0, not killed, and every output accepted."""
        return self.exit_code == 0 and not (self.oom or self.timed_out or self.rejected)


class Executor(ABC):
    """Runs one job's container beside its data. Every step is idempotent.

    Implementations keep what they need to resume on the host itself (the container and its
    labels, the job's work folder), never only in memory, so a new Executor in a restarted
    worker continues a job an old one began.
    """

    @abstractmethod
    def prepare(self, spec: SandboxSpec) -> State:
        """Make the host ready to start the job.

        1. If the job is already prepared, running or exited, change nothing; return its state.
        2. Check that the image is on this host (never pull), and the code and data folders exist.
        3. Create the work folder: params file and an empty ``/outputs`` capped at
           ``limits.outputs_bytes``.
        4. On failure raise SandboxError saying what to fix, leaving nothing half made.
        """

    @abstractmethod
    def start(self, spec: SandboxSpec, deadline: float | None = None) -> State:
        """Start the job's container; return RUNNING (or EXITED if it already finished).

        1. The job must be prepared; otherwise raise SandboxError.
        2. If a container of this job exists, adopt it (start it if it was only created);
           never create a second one.
        3. ``deadline`` (Unix time; default now + ``limits.timeout_s``) is stored with the
           container, so whoever waits for it later enforces the same deadline.
        """

    @abstractmethod
    def wait(self, job_id: str, timeout: float | None = None) -> State:
        """Wait for the job's container to stop; return the state it is in.

        1. Return EXITED once the container stopped; RUNNING if ``timeout`` seconds passed first.
        2. When the job's deadline passes, kill the container and record that it timed out
           (the record survives a worker restart).
        3. Safe to call any number of times, from any worker; ABSENT and PREPARED return at once.
        """

    @abstractmethod
    def collect(self, spec: SandboxSpec, store: ArtifactStore) -> RunResult:
        """Read the outcome of an exited job and move its accepted outputs into ``store``.

        1. The job must be EXITED; otherwise raise SandboxError.
        2. Exit code, OOM flag, timeout, duration and the capped log describe the run.
        3. Only if the job exited 0 are outputs collected, by ``runner.host.sandbox.collector``
           rules; an output problem makes the result failed (``rejected``) and leaves nothing of
           the job in the store.
        4. Repeatable: collecting twice gives the same outputs and digests.
        """

    @abstractmethod
    def cleanup(self, job_id: str) -> None:
        """Remove everything of the job from the host except what ``collect`` stored.

        1. Kill and remove its container, unmount and delete its ``/outputs`` and work folder.
        2. Idempotent: safe on a job that is half cleaned up or ABSENT.
        """

    @abstractmethod
    def status(self, job_id: str) -> State:
        """Where the job stands on this host.

        1. Changes nothing, on the host or in the executor.
        2. ABSENT also for a job this host never saw; any worker gets the same answer.
        """

    def run(
        self, spec: SandboxSpec, store: ArtifactStore, deadline: float | None = None
    ) -> RunResult:
        """Prepare, start, wait, collect and clean up one job; return its result.

        The job's traces are removed from the host whatever happens, except when this process
        dies, in which case a later ``run`` (or the reaper) finds the container by its name.
        """
        try:
            return watch(self, spec, store, deadline=deadline)
        finally:
            self.cleanup(spec.job_id)


def _nothing() -> None:
    pass


def watch(
    executor: Executor,
    spec: SandboxSpec,
    store: ArtifactStore,
    *,
    deadline: float | None = None,
    stop: threading.Event | None = None,
    stopping: str = "",
    poll_s: float | None = None,
    hold: Callable[[], None] = _nothing,
) -> RunResult:
    """Run ``spec`` to its end through the executor's steps; the one loop every caller uses
    (the worker's pipeline, the dry run, ``Executor.run`` and so the local run).

    1. ``hold()`` is called before the container is touched and after every wait; it raises to
       give the run up (the worker's lease was lost, another worker took over a dry run),
       leaving the container as it is.
    2. Prepare and start, adopting a container a lost worker left (steps are idempotent).
    3. Wait in slices of ``poll_s`` (None: until it exits); between slices, a set ``stop``
       raises ``TryLater(stopping)``: the container keeps running for the next worker.
    4. An exited container is collected; a container that vanished raises ``SandboxError``.

    Cleaning up is the caller's: only it knows whether the container is still its own.
    """
    hold()
    executor.prepare(spec)
    executor.start(spec, deadline)
    while True:
        if stop is not None and stop.is_set():
            raise TryLater(stopping or f"the worker is stopping; {spec.job_id} goes on later")
        state = executor.wait(spec.job_id, timeout=poll_s)
        hold()
        if state is State.EXITED:
            return executor.collect(spec, store)
        if state is not State.RUNNING:
            raise SandboxError(
                f"{spec.job_id}'s container disappeared while it ran (state {state}); was it "
                "removed by hand or by the reaper? Run the job again"
            )
