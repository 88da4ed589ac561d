"""The control plane as a data host sees it: the calls a host makes, and nothing more.

A data host only connects out. Everything it needs from the control plane, and everything it
tells it, is one of ``ControlPort``'s methods: read its own jobs, their datasets' policies,
their bundles and images; claim, renew and finish a job under a lease and a fence; lease and
record dry runs; upload released outputs and, when the owner asks, logs; say hello. What it
attests (a run's outcome) it signs with its own key; the control plane checks the signature
against the key the host enrolled.

``runner.host.port_http.HttpPort`` is the API over HTTP, with the host's credential: what every
data host uses. The unit tests' ``tests.kit.ports.ServicePort`` keeps the same contract over an
in-process ``jobs.service.Service``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from jobs.execution import Claim
from jobs.host_records import HostEnvironment
from jobs.images import ImageRecord
from jobs.models import Dataset, Job, Outcome
from jobs.schema_records import DryRun
from runner.artifacts import ArtifactStore

UploadKind = Literal["output", "log", "review"]


@dataclass(frozen=True)
class Finished:
    """What the control plane said to a finish: the job now, and whether its outputs are
    released (by the dataset's policy): then the host uploads them at once."""

    job: Job

    @property
    def released(self) -> bool:
        return self.job.state.value == "released"


class ControlPort(Protocol):
    """The control plane's calls a data host makes (see the module docstring)."""

    host: str

    def hello(
        self, environments: dict[str, HostEnvironment], agent: str, engine: bool | None = None
    ) -> None: ...

    def job(self, job_id: str) -> Job: ...

    def dataset(self, name: str) -> Dataset: ...

    def job_image(self, job_id: str) -> ImageRecord | None: ...

    def fetch_bundle(self, job: Job, digest: str, store: ArtifactStore) -> Path: ...

    def claim(self, job_id: str, worker: str, lease_s: float) -> Claim: ...

    def heartbeat(self, job_id: str, worker: str, fence: int, lease_s: float) -> Job: ...

    def finish(self, job_id: str, fence: int, outcome: Outcome, signature: str) -> Finished: ...

    def lease_dryrun(self, job_id: str, worker: str, lease_s: float) -> bool: ...

    def dryrun_of(self, job_id: str) -> DryRun | None: ...

    def record_dryrun(self, dryrun: DryRun) -> None: ...

    def upload(self, job_id: str, kind: UploadKind, digest: str, path: Path) -> None: ...

    def images_in_use(self) -> set[str]: ...

    def preparation(self, prep_id: str) -> dict[str, Any]: ...

    def fetch_preparation(
        self, prep_id: str, what: str, digest: str, store: ArtifactStore
    ) -> Path: ...

    def answer_preparation(
        self,
        prep_id: str,
        *,
        record: ImageRecord | None = None,
        error: tuple[str, str] | None = None,
    ) -> None: ...
