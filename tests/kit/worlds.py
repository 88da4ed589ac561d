"""The unit tests' worlds: real stores and ledgers on SQLite in a temporary folder, fake engines.

- ``build_world``: the job service alone (``jobs``): a real ledger and store on one file, five
  people (ada the admin, owners olga and otto, researchers rita and rob), the dataset ``iris``
  and a clock the test moves.
  The dataset lives on the enrolled data host ``default`` (``tests.kit.hosts``).
- ``build_control_world``: a whole installation: the control plane (``c2d init``'s state
  folder, the context the API opens) and its data host ``local`` (the context its agent opens,
  talking to the service in-process through ``ServicePort``) whose engine is the sandbox's
  ``FakeExecutor``; images resolve to ``IMAGE``; an owner olga, a researcher rita and the
  dataset ``ds`` on that host.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobs.bundle import Bundle, pack
from jobs.digests import sha256_digest
from jobs.models import Dataset, DatasetPolicy, Job, Outcome, Role, User
from jobs.service import Limits, Service
from jobs.signed_actions import SignaturePolicy
from jobs.spec import JobSpec
from jobs.store import Store
from ledger import Ledger
from runner.context import Context, open_context
from runner.control.install import init_home
from runner.host.context import HostContext, open_host_context
from runner.host.datasets import current_digest
from runner.host.engine import Engine
from runner.host.identity import load_identity
from runner.host.sandbox.fake import FakeExecutor, FakeHost, Script
from runner.host.sandbox.interface import SandboxSpec
from runner.settings import Settings
from tests.kit.clock import Clock
from tests.kit.hosts import TestHost, enroll_host, register_dataset
from tests.kit.ports import ServicePort

IMAGE = "sha256:" + "1" * 64


@dataclass
class World:
    """A service with users, a dataset and a job folder, ready for a test to act on."""

    service: Service
    ledger: Ledger
    store: Store
    clock: Clock
    tmp: Path
    host: TestHost | None = None
    users: dict[str, User] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    tampered: bool = False

    def register(
        self, who: User | str, name: str, folder: Path, policy: DatasetPolicy, **kw: Any
    ) -> Dataset:
        """Register ``folder`` as dataset ``name`` on the world's data host, as ``who``."""
        assert self.host is not None
        actor = self.users[who] if isinstance(who, str) else who
        return register_dataset(self.service, actor, self.host, name, folder, policy, **kw)

    def __getattr__(self, name: str) -> User:
        try:
            return self.__dict__["users"][name]
        except KeyError:
            raise AttributeError(name) from None

    def current_digest(self, name: str, settings: Settings | None = None) -> str:
        """Dataset ``name`` re-hashed on the world's data host (what its pre-run check does)."""
        assert self.host is not None
        return current_digest(settings or self.host.settings, self.host.registry, name)

    def code(self, text: str = "print('train')\n") -> tuple[JobSpec, str, list[str]]:
        """A job folder with ``train.py`` = ``text``: its spec, code digest and files."""
        folder = self.tmp / ("job-" + hashlib.sha256(text.encode()).hexdigest()[:12])
        folder.mkdir(exist_ok=True)
        (folder / "job.yaml").write_text(
            "name: train\ncommand: [python, train.py]\ndataset: iris\nparams: {lr: 0.1}\n"
            "resources: {memory: 512MiB, timeout: 10m}\noutputs: [model.skops]\n"
        )
        (folder / "train.py").write_text(text)
        bundle = pack(folder)
        return JobSpec.from_yaml(folder / "job.yaml"), bundle.digest, list(bundle.files)

    def submit(self, who: str = "rita", text: str = "print('train')\n", **kw):
        spec, digest, files = self.code(text)
        args = {"dataset_name": None, "image_id": IMAGE, "params": None, **kw}
        return self.service.submit(
            self.users[who],
            spec,
            args["dataset_name"],
            digest,
            files,
            args["image_id"],
            args["params"],
        )

    def approved(self, who: str = "rita", **kw):
        job = self.submit(who, **kw)
        return self.service.approve(self.olga, job.id, "ok")

    def types(self, subject: str) -> list[str]:
        return [e.type for e in self.ledger.entries_for(subject)]


def ok_outcome(**kw) -> Outcome:
    base = {
        "succeeded": True,
        "exit_code": 0,
        "reason": "exited with code 0",
        "duration_s": 2.0,
        "metrics": {"accuracy": 0.9},
    }
    return Outcome(**{**base, **kw})


def make_service(tmp: Path, clock: Clock, ledger_cls: type[Ledger] = Ledger, **kw):
    ledger = ledger_cls(tmp / "c2d.db", tmp / "ledger.key", "c2d.test/ledger")
    store = Store(tmp / "c2d.db")
    ids = (f"job{n:04d}" for n in itertools.count(1))
    # People in these worlds act with the service's calls, unsigned unless a test signs: the
    # tests of what a signature adds (tests/unit/jobs/test_signed_actions.py) ask for
    # ``signatures=SignaturePolicy.REQUIRED``, the product's default.
    kw.setdefault("signatures", SignaturePolicy.KEYHOLDERS)
    service = Service(store, ledger, clock=clock, new_id=lambda: next(ids), **kw)
    return service, store, ledger


def build_world(
    tmp: Path,
    ledger_cls: type[Ledger] = Ledger,
    review_outputs: bool = False,
    limits: Limits | None = None,
) -> World:
    tmp.mkdir(parents=True, exist_ok=True)
    clock = Clock(1_700_000_000.0)
    service, store, ledger = make_service(tmp, clock, ledger_cls, limits=limits)
    world = World(service=service, ledger=ledger, store=store, clock=clock, tmp=tmp)
    for name, role in [
        ("ada", Role.ADMIN),
        ("olga", Role.OWNER),
        ("otto", Role.OWNER),
        ("rita", Role.RESEARCHER),
        ("rob", Role.RESEARCHER),
    ]:
        world.users[name], world.tokens[name] = service.add_user(name, role)
    # The data host's own state folder; datasets are folders beside it under tmp.
    host_settings = Settings(home=tmp / "host", dataset_roots=str(tmp), origin="c2d.test/host")
    world.host = enroll_host(service, world.ada, host_settings)
    data = tmp / "iris"
    data.mkdir()
    (data / "iris.csv").write_text("sepal,petal,species\n5.1,1.4,setosa\n")
    (data / "more").mkdir()
    (data / "more" / "extra.csv").write_text("a\n1\n")
    world.register(
        "olga",
        "iris",
        data,
        DatasetPolicy(owner="olga", review_outputs=review_outputs, caps={"memory": "2GiB"}),
    )
    return world


@dataclass
class ControlWorld:
    """An installation with an owner, a researcher and a dataset, and a data host on a fake
    engine: ``control`` is the control plane's context, ``ctx`` the data host's."""

    control: Context
    ctx: HostContext
    tmp: Path
    host: FakeHost
    clock: Clock
    scripts: dict[str, Script] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def service(self):  # type: ignore[no-untyped-def]
        return self.control.service

    def submit(
        self,
        *,
        command: str = "train.py",
        params: dict[str, Any] | None = None,
        bundle_data: bytes | None = None,
        dataset: str = "ds",
    ) -> Job:
        """Submit a job of ``train.py`` on ``dataset``, or of ``bundle_data`` stored as it is
        (unchecked, as an upload accepted by an earlier server would be)."""
        folder = self.tmp / "job"
        folder.mkdir(exist_ok=True)
        (folder / "train.py").write_text("print('hello')\n")
        bundle = pack(folder)
        if bundle_data is not None:
            bundle = Bundle(bundle_data, sha256_digest(bundle_data), ("train.py",))
        self.control.artifacts.put_bytes(bundle.data)
        spec = JobSpec(
            name="train",
            command=["python3", command],
            dataset=dataset,
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

    def register(
        self, who: User | str, name: str, folder: Path, policy: DatasetPolicy, **kw: Any
    ) -> Dataset:
        """Register ``folder`` as dataset ``name`` on the world's data host, as ``who``."""
        actor = self.users[who] if isinstance(who, str) else who
        host = TestHost(self.ctx.settings, self.ctx.identity, self.ctx.registry)
        return register_dataset(self.service, actor, host, name, folder, policy, **kw)

    def other_host(self, name: str) -> HostContext:
        """Another data host of this control plane, enrolled, with its own folder and no
        datasets (close it when done)."""
        admin = self.control.store.get_user("admin")
        assert admin is not None
        settings = self.ctx.settings.model_copy(
            update={"home": self.tmp / f"host-{name}", "data_host": name}
        )
        enrolled = enroll_host(self.service, admin, settings, name)
        enrolled.close()
        port = ServicePort(
            self.service,
            self.service.get_host(name),
            self.control.artifacts,
            review=self.control.review,
        )
        engine = Engine(settings.work_dir, executor=self.executor(), resolver=lambda _n: IMAGE)
        return open_host_context(settings, control=port, engine=engine, identity=enrolled.identity)

    def executor(self, **kw: Any) -> FakeExecutor:
        """Another fake executor on the same fake engine (a restarted worker)."""
        return FakeExecutor(self.ctx.settings.work_dir, self._script, host=self.host, **kw)

    def _script(self, spec: SandboxSpec) -> Script:
        return self.scripts.get(spec.job_id, Script(files={"model.bin": b"m"}))

    def close(self) -> None:
        self.ctx.close()
        self.control.close()


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
        # People act unsigned here, as in ``make_service``'s worlds.
        "signatures": "keyholders",
    }
    values.update(overrides)
    return Settings(**values)


def build_control_world(tmp: Path, **overrides: Any) -> ControlWorld:
    settings = settings_for(tmp, **overrides)
    init_home(settings)
    fake = FakeHost()
    clock = Clock()
    world = ControlWorld(control=None, ctx=None, tmp=tmp, host=fake, clock=clock)  # type: ignore[arg-type]
    world.control = open_context(settings, clock=clock)
    service = world.control.service
    for name, role in (("olga", Role.OWNER), ("rita", Role.RESEARCHER)):
        user, token = service.add_user(name, role)
        world.users[name] = user
        world.tokens[name] = token
    host_settings = host_settings_for(settings, overrides)
    identity = load_identity(host_settings)
    executor = FakeExecutor(host_settings.work_dir, world._script, host=fake)
    engine = Engine(host_settings.work_dir, executor=executor, resolver=lambda _name: IMAGE)
    port = ServicePort(
        service,
        service.get_host(identity.name),
        world.control.artifacts,
        review=world.control.review,
    )
    world.ctx = open_host_context(host_settings, control=port, engine=engine, identity=identity)
    data = tmp / "data"
    data.mkdir()
    (data / "rows.csv").write_text("a,b\n1,2\n")
    data.chmod(0o755)
    (data / "rows.csv").chmod(0o644)
    test_host = TestHost(host_settings, identity, world.ctx.registry)
    # Released on success: these worlds test the run, not the owner's review of its outputs.
    policy = DatasetPolicy(owner="olga", review_outputs=False)
    register_dataset(service, world.users["olga"], test_host, "ds", data, policy)
    return world


def host_settings_for(control: Settings, overrides: dict[str, Any] | None = None) -> Settings:
    """The settings of the data host ``local`` that ``c2d init`` enrolled under ``control``."""
    values = control.model_dump()
    values.update(overrides or {})
    values["home"] = control.hosts_dir / "local"
    values["data_host"] = "local"
    return Settings(**values)


def tar_with(members: dict[str, bytes]) -> bytes:
    """A plain tar holding ``members`` (for tampering tests)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
