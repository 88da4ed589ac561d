"""The Docker executor: one hardened container per job, beside the job's data.

The container's configuration is ``hardening.create_kwargs``; the job's host folder and its
size-capped ``/outputs`` are ``workdir``; the log is ``logs``; outputs leave through
``runner.host.sandbox.collector``. What this module adds is the life cycle, written so every step
can be repeated by a worker that restarted:

- the container name ``c2d-job-<id>`` is the per-host lock: ``start`` adopts an existing
  container (a name conflict means another worker just created it) and never makes a second;
- the deadline travels on the container as the ``c2d.deadline`` label, and whoever waits
  enforces it: at the deadline the executor writes ``timed-out`` into the job folder, then kills
  the container (Celery's time limit plays no part);
- ``collect`` reads everything from the exited container and the outputs filesystem, both of
  which stay until ``cleanup``, so collecting twice gives the same result.

Output bound (details in ``workdir``): a job's ``/outputs`` is a sparse ext4 image exactly
``max(outputs_bytes, 256 KiB)`` long, so whatever the job does the host disk holds at most that
for it (measured: always below the limit itself, e.g. 864 KiB for a 1 MiB limit written 10x over;
tested with 64 KiB of slack for the host's extent blocks). Logs: Docker keeps two json-file logs
of ``log_bytes/2`` each; the worker keeps ``log_bytes``. ``/tmp`` and ``/dev/shm`` are tmpfs,
capped in size and charged to the job's memory limit.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import docker
import docker.errors
import requests
from docker.models.containers import Container
from docker.types import Mount

from runner.artifacts import ArtifactStore
from runner.errors import SandboxError, ServiceUnavailable
from runner.host.sandbox import hardening, workdir
from runner.host.sandbox.interface import Executor, RunResult, SandboxSpec, State
from runner.host.sandbox.logs import RESTART_NOTE, LogTap, cap_tail
from runner.host.sandbox.results import RunFacts, result_of
from runner.livelog import LiveLogs

T = TypeVar("T")
_EXITED = ("exited", "dead")
_SIGKILLED = 137
OOM_EVENT_WAIT_S = 1.0
"""How long a container killed by SIGKILL may take to be marked out of memory. The runtime
reports the kernel's OOM kill as an event of its own, which can reach the engine after the
exit (gVisor's shim does so under load): read too soon, an OOM kill reads as a plain kill."""
LOG_DRAIN_S = 30.0


def _engine(fn: Callable[..., T]) -> Callable[..., T]:
    """Turn 'the engine does not answer' into ServiceUnavailable, the same for every step."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except requests.exceptions.ConnectionError as exc:
            raise ServiceUnavailable(
                "the Docker engine does not answer; start it (`make services`) and retry"
            ) from exc
        except docker.errors.APIError as exc:  # what the steps did not expect and handle
            raise SandboxError(f"the Docker engine refused: {exc.explanation or exc}") from exc

    return wrapper


def _docker_time(text: str | None) -> float | None:
    """Parse Docker's RFC 3339 times (nanoseconds, 'Z'); None for its zero time."""
    if not text or text.startswith("0001-"):
        return None
    main, _, frac = text.rstrip("Z").partition(".")
    stamp = f"{main}.{(frac or '0')[:6].ljust(6, '0')}+00:00"
    return datetime.fromisoformat(stamp).timestamp()


class DockerExecutor(Executor):
    """Runs jobs in hardened containers on the local Docker engine.

    ``work_root`` is a folder this executor owns alone (job folders and outputs mounts live in
    it); pass the same one after a restart to adopt running jobs.
    """

    def __init__(
        self, client: docker.DockerClient, work_root: Path, live: LiveLogs | None = None
    ) -> None:
        self.client = client
        self.live = live  # where runs with ``spec.live_log`` write their output as it comes
        self.work_root = Path(work_root)
        self.work_root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._taps: dict[str, LogTap] = {}
        self._logs: dict[str, tuple[bytes, bool]] = {}

    def _dir(self, job_id: str) -> workdir.JobDir:
        return workdir.job_dir(self.work_root, job_id)

    def _container(self, job_id: str) -> Container | None:
        try:
            return self.client.containers.get(hardening.container_name(job_id))
        except docker.errors.NotFound:
            return None

    @staticmethod
    def _state_of(container: Container) -> State:
        if container.status == "created":
            return State.PREPARED
        return State.EXITED if container.status in _EXITED else State.RUNNING

    @_engine
    def status(self, job_id: str) -> State:
        container = self._container(job_id)
        if container is not None:
            return self._state_of(container)
        return State.PREPARED if self._dir(job_id).is_prepared() else State.ABSENT

    @_engine
    def prepare(self, spec: SandboxSpec) -> State:
        state = self.status(spec.job_id)
        if state in (State.RUNNING, State.EXITED):
            return state
        try:
            image = self.client.images.get(spec.image_id)
        except docker.errors.ImageNotFound as exc:
            raise SandboxError(
                f"image {spec.image_id} is not on this host and c2d never pulls images; build "
                "the job's environment here (`make image`) and submit again"
            ) from exc
        volumes = sorted((image.attrs.get("Config") or {}).get("Volumes") or {})
        if volumes:
            # Docker would give each declared VOLUME a writable, uncapped host volume, past the
            # read-only root and the /outputs cap.
            raise SandboxError(
                f"image {spec.image_id} declares VOLUME {', '.join(volumes)}; c2d refuses images "
                "with volumes because they would be writable and uncapped. Remove the VOLUME "
                "line from the Dockerfile and submit again"
            )
        if not spec.code_dir.is_dir():
            raise SandboxError(f"the job's code folder {spec.code_dir} does not exist")
        for name, path in spec.datasets.items():
            if not path.is_dir():
                raise SandboxError(
                    f"dataset {name}'s folder {path} does not exist on this host; check "
                    "`c2d dataset list`"
                )
        jd = self._dir(spec.job_id)
        fresh = not jd.root.exists()
        try:
            jd.job.mkdir(parents=True, exist_ok=True)
            jd.job.chmod(0o755)
            params = jd.job / "params.json"
            params.unlink(missing_ok=True)
            params.write_bytes(spec.params_json())
            params.chmod(0o444)
            self._prepare_outputs(spec, jd)
            jd.prepared.touch()
        except BaseException:
            if fresh:
                with contextlib.suppress(Exception):
                    workdir.remove_job_dir(jd)
            raise
        return State.PREPARED

    @_engine
    def start(self, spec: SandboxSpec, deadline: float | None = None) -> State:
        container = self._container(spec.job_id)
        if container is None:
            container = self._create(spec, deadline)
        if container.status == "created":
            if spec.job_id not in self._taps:
                stream = container.attach(stdout=True, stderr=True, stream=True, logs=False)
                limit = spec.limits.log_bytes
                sink = self.live.writer(spec.job_id, limit) if spec.live_log and self.live else None
                self._taps[spec.job_id] = LogTap(stream, limit, spec.job_id, sink)
            container.start()
        container.reload()
        return State.RUNNING if container.status == "created" else self._state_of(container)

    def _create(self, spec: SandboxSpec, deadline: float | None) -> Container:
        jd = self._dir(spec.job_id)
        if not jd.is_prepared():
            raise SandboxError(f"job {spec.job_id} is not prepared on this host; prepare it first")
        self._ready_outputs(spec, jd)
        now = time.time()
        deadline = now + spec.limits.timeout_s if deadline is None else deadline
        timeout_s = max(round(deadline - now), 0)
        kwargs = hardening.create_kwargs(spec, jd, deadline=deadline, timeout_s=timeout_s)
        kwargs["mounts"] = [
            m if m["Target"] != "/outputs" else self._outputs_mount(spec, jd)
            for m in kwargs["mounts"]
        ]
        try:
            return self.client.containers.create(**kwargs)
        except docker.errors.ImageNotFound as exc:
            raise SandboxError(
                f"image {spec.image_id} is not on this host and c2d never pulls images"
            ) from exc
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # 409: the name is taken, so another worker created it
                raise SandboxError(
                    f"Docker refused the job's container: {exc.explanation}"
                ) from exc
        found = self._container(spec.job_id)
        if found is None:
            raise SandboxError(f"job {spec.job_id}'s container vanished while it was created")
        return found

    @_engine
    def wait(self, job_id: str, timeout: float | None = None) -> State:
        container = self._container(job_id)
        if container is None or container.status == "created":
            return self.status(job_id)
        deadline = float(container.labels.get(hardening.LABEL_DEADLINE, "inf"))
        give_up = None if timeout is None else time.time() + timeout
        while True:
            container.reload()
            if container.status in _EXITED:
                return State.EXITED
            now = time.time()
            if now >= deadline:
                self._kill_at_deadline(job_id, container, deadline)
                continue
            until = deadline if give_up is None else min(deadline, give_up)
            if until <= now:
                return State.RUNNING
            with contextlib.suppress(requests.exceptions.RequestException):
                container.wait(timeout=max(until - now, 0.05))

    def _kill_at_deadline(self, job_id: str, container: Container, deadline: float) -> None:
        marker = self._dir(job_id).timed_out
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()  # first, so a crash between the two still reads as a timeout
        try:
            container.kill()
        except docker.errors.APIError as exc:
            container.reload()
            if container.status not in _EXITED:
                raise SandboxError(f"could not kill job {job_id} at its deadline: {exc}") from exc
            # Already stopped: by another worker's kill (keep the marker), or on its own in time.
            finished = _docker_time(container.attrs["State"].get("FinishedAt"))
            if finished is not None and finished < deadline:
                marker.unlink(missing_ok=True)
        with contextlib.suppress(requests.exceptions.RequestException):
            container.wait(timeout=60)  # the caller's loop checks again either way

    @_engine
    def collect(self, spec: SandboxSpec, store: ArtifactStore) -> RunResult:
        container = self._container(spec.job_id)
        if container is None or container.status not in _EXITED:
            raise SandboxError(
                f"job {spec.job_id} has not exited (state {self.status(spec.job_id)}); "
                "wait for it before collecting"
            )
        jd = self._dir(spec.job_id)
        timed_out = jd.timed_out.exists()
        state = container.attrs["State"]
        if int(state["ExitCode"]) == _SIGKILLED and not state.get("OOMKilled") and not timed_out:
            state = _late_oom(container)
        exit_code = int(state["ExitCode"])
        oom = bool(state.get("OOMKilled"))
        started = _docker_time(state.get("StartedAt"))
        finished = _docker_time(state.get("FinishedAt"))
        duration = max(finished - started, 0.0) if started and finished else 0.0
        log, truncated = self._log(spec, container)
        outputs, full = self._exited_outputs(spec, jd)
        facts = RunFacts(
            exit_code=exit_code,
            oom=oom,
            timed_out=timed_out,
            timeout_s=int(container.labels.get(hardening.LABEL_TIMEOUT, spec.limits.timeout_s)),
            duration_s=duration,
            log=log,
            log_truncated=truncated,
            outputs_full=full,
            fsize_limit=hardening.fsize_limit(spec.limits),
        )
        return result_of(spec, facts, outputs, store)

    # -- /outputs: a loop-mounted ext4 image of the job's size here; see TmpfsOutputsExecutor

    def _prepare_outputs(self, spec: SandboxSpec, jd: workdir.JobDir) -> None:
        """Make the job's empty, size-capped /outputs (idempotent)."""
        size = workdir.image_bytes(spec.limits.outputs_bytes)
        workdir.ensure_outputs(jd, size, spec.uid, spec.gid)

    def _ready_outputs(self, spec: SandboxSpec, jd: workdir.JobDir) -> None:
        """Make sure /outputs is there before the container is created."""
        workdir.mount_outputs(jd)  # after a host reboot the image is there but not mounted

    def _outputs_mount(self, spec: SandboxSpec, jd: workdir.JobDir) -> Mount:
        """The container's /outputs mount."""
        return Mount(target="/outputs", source=str(jd.outputs), type="bind", read_only=False)

    def _exited_outputs(self, spec: SandboxSpec, jd: workdir.JobDir) -> tuple[Path, bool]:
        """The host folder holding what the exited job left in /outputs, and whether it
        filled it."""
        if not jd.image.exists():
            raise SandboxError(f"job {spec.job_id}'s /outputs is gone from {jd.root}")
        workdir.mount_outputs(jd)
        return jd.outputs, workdir.outputs_full(jd)

    def _log(self, spec: SandboxSpec, container: Container) -> tuple[bytes, bool]:
        """The tap's log when it saw the whole run; otherwise Docker's capped copy, so marked."""
        if spec.job_id in self._logs:
            return self._logs[spec.job_id]
        tap = self._taps.pop(spec.job_id, None)
        got = tap.result(LOG_DRAIN_S) if tap is not None else None
        if got is None:
            raw = container.logs(stdout=True, stderr=True)
            note = (
                RESTART_NOTE
                if tap is None
                else "[c2d: the live log stream broke; "
                + ("this is Docker's capped copy and may be incomplete]\n")
            )
            got = cap_tail(raw, spec.limits.log_bytes, note)
        self._logs[spec.job_id] = got
        return got

    @_engine
    def cleanup(self, job_id: str) -> None:
        tap = self._taps.pop(job_id, None)
        if tap is not None:
            tap.close()
        self._logs.pop(job_id, None)
        container = self._container(job_id)
        if container is not None:
            try:
                container.remove(force=True)
            except docker.errors.APIError as exc:
                if exc.status_code not in (404, 409):  # gone, or Docker is already removing it
                    raise
            for _ in range(50):  # removal is asynchronous when Docker is already removing it
                if self._container(job_id) is None:
                    break
                time.sleep(0.1)
        self._remove_outputs(job_id)
        workdir.remove_job_dir(self._dir(job_id))

    def _remove_outputs(self, job_id: str) -> None:
        """Remove what holds /outputs beside the job folder (nothing: it is in the folder)."""


def _late_oom(container: Container) -> dict[str, Any]:
    """The exited ``container``'s state once its OOM event had time to land (see
    ``OOM_EVENT_WAIT_S``): a SIGKILL from a cancellation stays a plain kill, a second later."""
    deadline = time.monotonic() + OOM_EVENT_WAIT_S
    while True:
        time.sleep(0.1)
        container.reload()
        state: dict[str, Any] = container.attrs["State"]
        if state.get("OOMKilled") or time.monotonic() >= deadline:
            return state
