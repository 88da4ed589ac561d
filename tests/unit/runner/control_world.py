"""A control-plane world for unit tests: a real installation in tmp_path, a fake executor.

The store, the ledger, the service and the artifact store are real (SQLite on disk); only the
container engine is the sandbox's FakeExecutor and images resolve to a fixed ID.
"""

from __future__ import annotations

import io
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobs.bundle import Bundle, pack
from jobs.digests import sha256_digest
from jobs.models import DatasetPolicy, Job, Role, User
from jobs.spec import JobSpec
from runner.context import Context, open_context
from runner.control.install import init_home
from runner.host.engine import Engine
from runner.host.sandbox.fake import FakeExecutor, FakeHost, Script
from runner.host.sandbox.interface import SandboxSpec
from runner.settings import Settings

IMAGE = "sha256:" + "ab" * 32


class Clock:
    """Real time plus an offset the test moves, shared by the service and the reconciler."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclass
class ControlWorld:
    """An installation with an owner, a researcher and a dataset, and a fake engine."""

    ctx: Context
    tmp: Path
    host: FakeHost
    clock: Clock
    scripts: dict[str, Script] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)

    @property
    def service(self):  # type: ignore[no-untyped-def]
        return self.ctx.service

    def submit(
        self,
        *,
        command: str = "train.py",
        params: dict[str, Any] | None = None,
        bundle_data: bytes | None = None,
    ) -> Job:
        """Submit a job of ``train.py``, or of ``bundle_data`` stored as it is (unchecked, as
        an upload accepted by an earlier server would be)."""
        folder = self.tmp / "job"
        folder.mkdir(exist_ok=True)
        (folder / "train.py").write_text("print('hello')\n")
        bundle = pack(folder)
        if bundle_data is not None:
            bundle = Bundle(bundle_data, sha256_digest(bundle_data), ("train.py",))
        self.ctx.artifacts.put_bytes(bundle.data)
        spec = JobSpec(
            name="train",
            command=["python3", command],
            dataset="ds",
            params=params or {"n": 1},
            outputs=["model.bin"],
        )
        return self.service.submit(
            self.users["rita"], spec, None, bundle.digest, list(bundle.files), IMAGE
        )

    def approved(self, script: Script | None = None, **kw: Any) -> Job:
        job = self.submit(**kw)
        if script is not None:
            self.scripts[job.id] = script
        return self.service.approve(self.users["olga"], job.id, "ok")

    def executor(self, **kw: Any) -> FakeExecutor:
        """Another fake executor on the same fake engine (a restarted worker)."""
        return FakeExecutor(self.ctx.settings.work_dir, self._script, host=self.host, **kw)

    def _script(self, spec: SandboxSpec) -> Script:
        return self.scripts.get(spec.job_id, Script(files={"model.bin": b"m"}))

    def close(self) -> None:
        self.ctx.close()


def settings_for(tmp: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "home": tmp / "home",
        # Datasets live under tmp (the state folder, tmp/home, never counts as one).
        "dataset_roots": str(tmp),
        "origin": "c2d.test/unit",
        "redis_url": "redis://127.0.0.1:1/0",
        "lease_s": 5.0,
        "heartbeat_s": 0.2,
        "redispatch_s": 10.0,
    }
    values.update(overrides)
    return Settings(**values)


def build_control_world(tmp: Path, **overrides: Any) -> ControlWorld:
    settings = settings_for(tmp, **overrides)
    init_home(settings)
    host = FakeHost()
    clock = Clock()
    world = ControlWorld(ctx=None, tmp=tmp, host=host, clock=clock)  # type: ignore[arg-type]
    executor = FakeExecutor(settings.work_dir, world._script, host=host)
    engine = Engine(settings.work_dir, executor=executor, resolver=lambda _name: IMAGE)
    world.ctx = open_context(settings, engine=engine, clock=clock)
    service = world.ctx.service
    for name, role in (("olga", Role.OWNER), ("rita", Role.RESEARCHER)):
        user, _ = service.add_user(name, role)
        world.users[name] = user
    data = tmp / "data"
    data.mkdir()
    (data / "rows.csv").write_text("a,b\n1,2\n")
    data.chmod(0o755)
    (data / "rows.csv").chmod(0o644)
    service.register_dataset(world.users["olga"], "ds", data, DatasetPolicy(owner="olga"))
    return world


def tar_with(members: dict[str, bytes]) -> bytes:
    """A plain tar holding ``members`` (for tampering tests)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
