"""The web pages of a whole control plane with a fake engine, served over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from jobs.models import DatasetPolicy, Job, OutputFile
from runner.control.api import create_app
from tests.kit.web import Visitor, served
from tests.kit.worlds import ControlWorld, build_control_world, ok_outcome


@dataclass
class WebWorld:
    """A control world (olga owns ``ds``, whose outputs she reviews; rita researches) whose
    API and pages answer at ``url``."""

    world: ControlWorld
    url: str
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
        """A job of rita's that ran and left ``outputs`` (stored as blobs), not released."""
        job = self.world.approved()
        claim = self.service.claim(job.id, "w1", 60)
        store = self.world.ctx.artifacts
        files = []
        for name, data in outputs.items():
            digest, size = store.put_bytes(data)
            files.append(OutputFile(name=name, sha256=digest, bytes=size))
        log_digest, _ = store.put_bytes(log)
        outcome = ok_outcome(outputs=files, log_digest=log_digest, **kw)
        return self.service.finish(job.id, claim.fence, outcome)

    def entries(self, job_id: str) -> list[tuple[str, str]]:
        """(type, actor) of the job's ledger entries."""
        return [(e.type, e.actor) for e in self.world.ctx.ledger.entries_for(job_id)]


@pytest.fixture
def web(tmp_path: Path) -> Iterator[WebWorld]:
    world = build_control_world(tmp_path)
    olga = world.users["olga"]
    world.service.register_dataset(
        olga, "ds", tmp_path / "data", DatasetPolicy(owner="olga", review_outputs=True)
    )
    app = create_app(world.ctx.settings, context=world.ctx)
    with served(app) as url:
        made = WebWorld(world, url)
        yield made
        for visitor in made.visitors:
            visitor.close()
    world.close()
