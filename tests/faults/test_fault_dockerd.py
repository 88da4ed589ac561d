"""The Docker engine restarted while a job runs, on an engine of the suite's own by default.

Restarting the machine's dockerd stops every container on it and cuts off every other Docker
user (other test sessions, CI jobs, people), so by default the fault hits a dockerd the suite
starts for itself. ``C2D_FAULTS_DOCKERD`` chooses:

- ``private`` (the default): a dockerd of the suite's own (its own socket and network
  namespace, data and exec roots under /var/tmp/c2d-faults-dockerd, the job image loaded into
  it once); it needs root, as ``make services`` does;
- ``shared``: restart the machine's engine the way ``make services`` manages it (SIGTERM to the
  dockerd of ``/var/run/docker.pid``, then ``runner/scripts/services.sh docker``, which starts it
  again and waits until it answers);
- ``off``: skip the case.

The job ignores SIGTERM, so the engine's shutdown (which closes its API first, then stops
the containers) keeps it alive through its stop grace: the worker finds the engine gone while
the job runs, hands the job back (Celery retry) and, once the engine answers again, a worker
adopts the container. A dockerd without live-restore kills running containers when it shuts
down, so the job ends failed with the signal named (c2d never starts a job a second time from
scratch); with live-restore the container survives and the job succeeds. Either way it ends
once, no second container is made, and the four invariants hold.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fault_invariants import check_invariants
from fault_kit import REPO, fault_stack, job_folder, running_container, sleeper

from tests.kit.procs import Proc, spawn, wait_for

MODE = os.environ.get("C2D_FAULTS_DOCKERD", "private")
SKIP_REASON = f"C2D_FAULTS_DOCKERD={MODE}: the dockerd restart case is off"
PRIVATE_ROOT = Path("/var/tmp/c2d-faults-dockerd")
STUBBORN = (
    "import signal\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n" + sleeper(20)  # outlives the engine's SIGTERM
)
IMAGE = "c2d/python-ml:latest"

pytestmark = [
    pytest.mark.docker,
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.faults,
    pytest.mark.skipif(MODE not in ("private", "shared"), reason=SKIP_REASON),
]


def _host_bridges() -> set[str]:
    return {p.parent.name for p in Path("/sys/class/net").glob("*/bridge")}


def _gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists()


class SharedEngine:
    """The machine's dockerd, restarted the way runner/scripts/services.sh manages it."""

    env: dict[str, str] = {}  # noqa: RUF012 - nothing to add: the default socket

    def __init__(self, client: Any) -> None:
        self.client = client

    def restart(self) -> None:
        pid = int(Path("/var/run/docker.pid").read_text())
        assert Path(f"/proc/{pid}/comm").read_text().strip() == "dockerd", pid
        os.kill(pid, signal.SIGTERM)
        wait_for("dockerd to stop", lambda: _gone(pid), 90)
        done = subprocess.run(
            ["bash", str(REPO / "runner" / "scripts" / "services.sh"), "docker"],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
            start_new_session=True,  # dockerd outlives this test, outside its process group
        )
        assert done.returncode == 0, done.stderr
        wait_for("the engine to answer", self.client.ping, 60)


class PrivateEngine:
    """A dockerd of the suite's own, on its own socket; only it is stopped and started."""

    def __init__(self, shared: Any) -> None:
        import docker

        PRIVATE_ROOT.mkdir(parents=True, exist_ok=True)
        self.socket = PRIVATE_ROOT / "docker.sock"
        self.pidfile = PRIVATE_ROOT / "docker.pid"
        self.env = {"DOCKER_HOST": f"unix://{self.socket}"}
        self.proc: Proc | None = None
        # A fixed API version: the client then needs no answer from the engine to be made.
        self.client = docker.DockerClient(
            base_url=self.env["DOCKER_HOST"], version="1.41", timeout=120
        )
        try:
            self._start()
            self._load_image(shared)
        except BaseException:
            self.close()
            raise

    def _start(self) -> None:
        """Start this suite's dockerd and wait until it (not a leftover) answers."""
        self._stop_leftover()
        # Its own network namespace: a dockerd with --bridge=none deletes the docker0 it finds,
        # which would cut the machine's engine off its default bridge.
        argv = [
            "unshare", "--net",  # execs dockerd: the pid stays the one spawn returns
            "dockerd", "--iptables=false", "--bridge=none",
            "--data-root", str(PRIVATE_ROOT / "data"),
            "--exec-root", str(PRIVATE_ROOT / "exec"),
            "--pidfile", str(self.pidfile),
            "-H", self.env["DOCKER_HOST"],
        ]  # fmt: skip
        proc = spawn("dockerd", argv, dict(os.environ), PRIVATE_ROOT)
        self.proc = proc

        def ours_answers() -> bool:
            assert proc.alive(), proc.tail()
            return self._pid() == proc.popen.pid and self._answers()

        wait_for("the private engine to answer", ours_answers, 60, proc.tail())

    def _pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text())
        except (OSError, ValueError):
            return None

    def _stop_leftover(self) -> None:
        """A private dockerd an interrupted run left (its pidfile is under our folder)."""
        pid = self._pid()
        if pid is None or _gone(pid):
            return
        if Path(f"/proc/{pid}/comm").read_text().strip() == "dockerd":
            os.kill(pid, signal.SIGTERM)
            wait_for("the leftover private dockerd to stop", lambda: _gone(pid), 90)

    def _load_image(self, shared: Any) -> None:
        import docker.errors

        wanted = shared.images.get(IMAGE).id
        try:
            if self.client.images.get(IMAGE).id == wanted:
                return
        except docker.errors.ImageNotFound:
            pass
        with subprocess.Popen(["docker", "save", IMAGE], stdout=subprocess.PIPE) as save:
            subprocess.run(
                ["docker", "load"],
                stdin=save.stdout,
                env={**os.environ, **self.env},
                check=True,
                capture_output=True,
                timeout=600,
            )
        assert save.returncode == 0

    def restart(self) -> None:
        assert self.proc is not None
        self.proc.stop(90)
        self._start()

    def _answers(self) -> bool:
        try:
            return bool(self.client.ping())
        except Exception:
            return False

    def close(self) -> None:
        self.client.close()
        if self.proc is not None:
            self.proc.stop(90)


@pytest.fixture
def engine(docker_client: Any, job_image: str) -> Iterator[Any]:
    if MODE == "private":
        if os.geteuid() != 0 or not (shutil.which("dockerd") and shutil.which("unshare")):
            reason = "a private dockerd needs root, dockerd and unshare (`make services`)"
            if os.environ.get("CI"):
                pytest.fail(reason)
            pytest.skip(reason + "; or set C2D_FAULTS_DOCKERD=shared|off")
        bridges = _host_bridges()
        made = PrivateEngine(docker_client)
        try:
            yield made
        finally:
            made.close()
        assert _host_bridges() >= bridges, "the private dockerd touched the host's network"
    else:
        yield SharedEngine(docker_client)


def test_dockerd_restarted_mid_job(
    engine: Any, tmp_path: Path, docker_client: Any, redis_server_binary: str
) -> None:
    client = engine.client
    live_restore = bool(client.info().get("LiveRestoreEnabled"))
    with fault_stack(tmp_path / "stack", client, extra_env=engine.env) as stack:
        stack.setup_people(tmp_path / "data")
        worker = stack.start_worker()
        job_id = stack.submit(job_folder(tmp_path / "job", STUBBORN))
        stack.approve(job_id)
        container = wait_for(
            "the job's container to run",
            lambda: running_container(client, job_id),
            60,
            stack.logs(),
        )
        wait_for(  # past the line that ignores SIGTERM
            "the job to start", lambda: b"started" in container.logs(), 30, stack.logs()
        )
        before = time.time()

        engine.restart()
        job = stack.wait_ended(job_id, timeout=180)

        assert worker.alive(), worker.tail()
        if live_restore:
            assert job["state"] == "released", job
        else:  # killed by the engine's shutdown once its stop grace ran out
            assert job["state"] == "failed", job
            assert "exited with code 137 (signal 9, SIGKILL)" in job["reason"], stack.logs()
        types = [e["type"] for e in stack.entries(job_id)]
        if "handed back" in worker.text():
            # The engine went away before the worker saw the container end: the job was handed
            # back and continued by adoption once the engine answered again.
            assert types.count("job.reclaimed") >= 1, types
        else:
            # The engine's shutdown killed the container and the worker read its exit before
            # the engine's socket closed (a race the machine's load decides): the same worker
            # recorded the end.
            assert not live_restore, worker.tail()
            assert f"job {job_id} finished: exited with code 137" in worker.text(), worker.tail()
        assert types.count("job.finished") == 1, types
        created = client.events(
            since=int(before) - 1,
            until=int(time.time()) + 1,
            filters={"type": "container", "event": "create", "label": f"c2d.job={job_id}"},
            decode=True,
        )
        assert list(created) == []  # never started a second time
        check_invariants(stack, [job_id], client, tmp_path)
