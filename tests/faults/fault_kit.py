"""The fault-injection suite's kit: a real c2d on a private Redis, and the jobs it runs.

``FaultStack`` is one installation started the way an operator starts one: ``c2d init`` then
``c2d server`` and ``c2d worker`` as real processes (each in its own process group), on a
``redis-server`` of its own (``RedisServer``, on a free port in a temporary folder, with or
without persistence), so a test may kill, stop and restart any of them without touching the
shared services. Leases are short (3 s) so that recovery happens within a test's time.

The invariants every case ends with are in ``fault_invariants``.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs.bundle import pack
from jobs.spec import JobSpec
from tests.kit.containers import DRYRUN_SUFFIX, job_containers, running_container
from tests.kit.data import make_dataset, script_job, sleeper
from tests.kit.installation import COMMAND_S, ENDED, REPO, Installation, new_installation
from tests.kit.procs import wait_for
from tests.kit.redis import RedisServer

FAST_LEASES = {"lease_s": "3", "redispatch_s": "2", "reconcile_s": "1"}
# Every submit also runs the job on mock data (the pre-approval dry run, on by default, as
# shipped); capping it keeps a long fault job's dry run from outliving the case.
SHORT_DRYRUNS = {"dryrun_timeout": "5s"}


@dataclass
class People:
    """A data owner and a researcher with their tokens, and the canary's dataset."""

    owner: str
    owner_token: str
    researcher: str
    researcher_token: str
    dataset: str


@dataclass
class FaultStack(Installation):
    """An ``Installation`` on a ``RedisServer`` of its own, with one owner, one researcher and
    a released-on-success dataset holding the canary (``setup_people``)."""

    redis: RedisServer | None = None
    people: People | None = None

    def remove_leftovers(self, docker_client: Any) -> None:
        """After a failed case: remove this installation's containers and outputs mounts."""
        from runner.host.sandbox.workdir import job_dirs, remove_job_dir

        if self.db.exists():
            for container in job_containers(docker_client, self.job_ids()):
                with suppress(Exception):
                    container.remove(force=True)
        for jd in job_dirs(self.host_home / "work"):
            with suppress(Exception):
                remove_job_dir(jd)

    def stop_workers(self) -> None:
        """Stop every data host agent this stack started (the API keeps running)."""
        for proc in self.live("worker"):
            proc.stop()

    def cli(
        self, *args: str, token: str | None = None, timeout: float = COMMAND_S
    ) -> subprocess.CompletedProcess[str]:
        """Run the real ``c2d ARGS`` as the holder of ``token`` (default admin)."""
        return self.c2d(*args, token=token or self.admin_token, timeout=timeout)

    def cli_json(self, *args: str, expect: int = 0, token: str | None = None) -> Any:
        """``c2d ARGS --json`` as the holder of ``token`` (default admin); the JSON document."""
        return self.json(*args, expect=expect, token=token or self.admin_token)

    def setup_people(self, data: Path) -> People:
        """An owner, a researcher and a released-on-success dataset (made once per stack)."""
        if self.people is None:
            with self.client() as admin:
                owner = admin.add_user(f"olga-{uuid.uuid4().hex[:6]}", "owner")
                researcher = admin.add_user(f"rita-{uuid.uuid4().hex[:6]}", "researcher")
            dataset = f"ds-{uuid.uuid4().hex[:6]}"
            added = self.dataset_add(
                owner["token"], dataset, make_dataset(data, rows=40), "--release-on-success"
            )
            assert added.returncode == 0, added.stderr
            self.people = People(
                owner["name"], owner["token"], researcher["name"], researcher["token"], dataset
            )
        return self.people

    def submit(self, folder: Path, dataset: str | None = None) -> str:
        """Submit ``folder`` as the researcher (what ``c2d submit`` sends); the job id."""
        assert self.people is not None
        spec = JobSpec.from_yaml(folder / "job.yaml").with_overrides(
            dataset=dataset or self.people.dataset
        )
        with self.client(self.people.researcher_token) as client:
            return str(client.submit(spec.model_dump(mode="json"), pack(folder).data)["id"])

    def approve(self, job_id: str) -> dict[str, Any]:
        assert self.people is not None
        with self.client(self.people.owner_token) as client:
            return client.approve(job_id)

    def wait_dryrun(self, job_id: str, timeout: float = 60.0) -> None:
        """Wait until the job's pre-approval dry run is recorded (it runs on every submit)."""
        wait_for(
            f"job {job_id}'s dry run",
            lambda: any(e["type"] == "job.dryrun" for e in self.entries(job_id)),
            timeout,
            self.logs(),
        )


@contextmanager
def fault_stack(
    root: Path,
    docker_client: Any,
    *,
    persistent_redis: bool = False,
    extra_env: dict[str, str] | None = None,
    **settings: str,
) -> Iterator[FaultStack]:
    """``c2d init`` under ``root`` with its own Redis; start the API; stop all at the end.

    Workers are started by the tests (``ensure("worker")``), since many kill them. At the end
    whatever a failed case left (containers, outputs mounts) is removed with the processes.
    """
    redis = RedisServer(root / "redis", persistent=persistent_redis)
    redis.start()
    made = new_installation(
        root,
        redis.url,
        origin=f"c2d.faults/{uuid.uuid4().hex[:8]}",
        extra_env=extra_env,  # e.g. DOCKER_HOST of a private engine
        **{**FAST_LEASES, **SHORT_DRYRUNS, **settings},
    )
    stack = FaultStack(root=made.root, env=made.env, redis=redis)
    try:
        done = stack.init()
        assert done.returncode == 0, f"c2d init failed:\n{done.stdout}\n{done.stderr}"
        stack.hello()  # the local host has reported its environments once, as after a start
        stack.start_server()
        yield stack
    finally:
        stack.stop()
        redis.stop()
        stack.remove_leftovers(docker_client)


# -- jobs -------------------------------------------------------------------------------------


def job_folder(
    folder: Path,
    script: str,
    *,
    memory: str = "256MiB",
    timeout: str = "2m",
    outputs: str = "1MiB",
    declared: tuple[str, ...] = (),
) -> Path:
    """A job folder whose job.yaml runs ``python3 run.py`` (``script``) in python-ml."""
    return script_job(
        folder, script, name="fault", memory=memory, timeout=timeout, outputs=outputs,
        declared=declared,
    )  # fmt: skip


CANARY = sleeper(0)

__all__ = [
    "CANARY",
    "DRYRUN_SUFFIX",
    "ENDED",
    "REPO",
    "FaultStack",
    "People",
    "fault_stack",
    "job_containers",
    "job_folder",
    "running_container",
    "sleeper",
]
