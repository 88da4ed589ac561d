"""The web pages of a whole control plane and its data host on a fake engine, served over
real HTTP."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from jobs.models import DatasetPolicy, Job, OutputFile
from runner.control.api import create_app
from runner.host.context import HostContext
from runner.host.delivery import upload
from tests.kit.web import Visitor, served
from tests.kit.worlds import ControlWorld, build_control_world, ok_outcome


class HostAsks:
    """Stands in for the Celery hop from the control plane to the data host
    (``ApiState.ask_host``): records every ask and, unless ``held``, has the host answer it at
    once in this process (``runner.host.delivery.upload`` through the in-process port)."""

    def __init__(self, host: HostContext) -> None:
        self.host = host
        self.asked: list[tuple[str, str]] = []
        self.held = False
        self._waiting: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, job: Job, what: str) -> bool:
        with self._lock:
            self.asked.append((job.id, what))
            if self.held:
                self._waiting.append((job.id, what))
                return True
        upload(self.host, job.id, what)
        return True

    def answer(self) -> None:
        """The host answers every ask it was held from, and later ones at once."""
        with self._lock:
            waiting, self._waiting, self.held = self._waiting, [], False
        for job_id, what in waiting:
            upload(self.host, job_id, what)


@dataclass
class WebWorld:
    """A control world (olga owns ``ds``, whose outputs she reviews; rita researches) whose
    API and pages answer at ``url``; ``asks`` is what the control plane asked of the host."""

    world: ControlWorld
    url: str
    asks: HostAsks
    visitors: list[Visitor] = field(default_factory=list)

    @property
    def service(self):  # type: ignore[no-untyped-def]
        return self.world.service

    def visitor(self, who: str | None = None) -> Visitor:
        """A browser session of ``who`` (signed in), or of nobody."""
        made = Visitor(self.url)
        self.visitors.append(made)
        if who is not None:
            answer = made.sign_in(self.world.tokens[who])
            assert answer.status_code == 303, answer.text
        return made

    def succeeded(self, outputs: dict[str, bytes], log: bytes = b"trained\n", **kw) -> Job:
        """A job of rita's that ran and left ``outputs``, not released: the outputs and the
        log are on the data host (its own artifact store), as a run leaves them."""
        job = self.world.approved()
        claim = self.service.claim(job.id, "w1", 60)
        store = self.world.ctx.artifacts  # the data host's
        files = []
        for name, data in outputs.items():
            digest, size = store.put_bytes(data)
            files.append(OutputFile(name=name, sha256=digest, bytes=size))
        log_digest, _ = store.put_bytes(log)
        outcome = ok_outcome(outputs=files, log_digest=log_digest, **kw)
        return self.service.finish(job.id, claim.fence, outcome)

    def entries(self, job_id: str) -> list[tuple[str, str]]:
        """(type, actor) of the job's ledger entries."""
        return [(e.type, e.actor) for e in self.world.control.ledger.entries_for(job_id)]


@pytest.fixture
def web(tmp_path: Path) -> Iterator[WebWorld]:
    world = build_control_world(tmp_path)
    world.register(
        "olga", "ds", tmp_path / "data", DatasetPolicy(owner="olga", review_outputs=True)
    )
    app = create_app(world.control.settings, context=world.control)
    asks = HostAsks(world.ctx)
    app.state.c2d.ask_host = asks
    with served(app) as url:
        made = WebWorld(world, url, asks)
        yield made
        for visitor in made.visitors:
            visitor.close()
    world.close()
