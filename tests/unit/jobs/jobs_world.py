"""A job service world for tests: a real Ledger and Store on one SQLite file in tmp_path."""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from pathlib import Path

from jobs.bundle import pack
from jobs.models import DatasetPolicy, Outcome, Role, User
from jobs.service import DatasetRoots, Limits, Service
from jobs.spec import JobSpec
from jobs.store import Store
from ledger import Ledger

IMAGE = "sha256:" + "1" * 64


class Clock:
    """A clock the test moves by hand, so leases expire exactly when the test says."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class World:
    """A service with users, a dataset and a job folder, ready for a test to act on."""

    service: Service
    ledger: Ledger
    store: Store
    clock: Clock
    tmp: Path
    users: dict[str, User] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    tampered: bool = False

    def __getattr__(self, name: str) -> User:
        try:
            return self.__dict__["users"][name]
        except KeyError:
            raise AttributeError(name) from None

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
    # Datasets are folders under tmp; the database and key sit beside them, so no state folder.
    kw.setdefault("dataset_roots", DatasetRoots.of([tmp], None))
    service = Service(store, ledger, clock=clock, new_id=lambda: next(ids), **kw)
    return service, store, ledger


def build_world(
    tmp: Path,
    ledger_cls: type[Ledger] = Ledger,
    review_outputs: bool = False,
    limits: Limits | None = None,
) -> World:
    tmp.mkdir(parents=True, exist_ok=True)
    clock = Clock()
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
    data = tmp / "iris"
    data.mkdir()
    (data / "iris.csv").write_text("sepal,petal,species\n5.1,1.4,setosa\n")
    (data / "more").mkdir()
    (data / "more" / "extra.csv").write_text("a\n1\n")
    service.register_dataset(
        world.olga,
        "iris",
        data,
        DatasetPolicy(owner="olga", review_outputs=review_outputs, caps={"memory": "2GiB"}),
    )
    return world
