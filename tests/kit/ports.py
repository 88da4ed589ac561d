"""The control plane as a data host's port, in-process: ``ServicePort`` calls a ``Service``.

The same contract as ``runner.host.port_http.HttpPort`` (``runner.host.port.ControlPort``),
for unit tests of the host's pipeline with a real store and ledger and no HTTP.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jobs.errors import NotFound
from jobs.execution import Claim
from jobs.host_records import Host, HostEnvironment
from jobs.images import ImageRecord
from jobs.models import Dataset, Job, Outcome
from jobs.schema_records import DryRun
from jobs.service import Service
from runner.artifacts import ArtifactStore
from runner.control.preparations import Preparations
from runner.errors import IntegrityError
from runner.host.port import Finished, UploadKind


class ServicePort:
    """``ControlPort`` over a ``Service`` in this process, as host ``host`` (unit tests)."""

    def __init__(
        self,
        service: Service,
        host: Host,
        artifacts: ArtifactStore,
        preparations: Preparations | None = None,
        *,
        review: ArtifactStore | None = None,
    ) -> None:
        self.service = service
        self.host = host.name
        self._host = host
        self._artifacts = artifacts  # the control plane's store
        self._review = review  # its store of outputs uploaded for review, kept apart
        self.preparations = preparations or Preparations()

    def _me(self) -> Host:
        found = self.service.get_host(self.host)
        return found

    def hello(
        self, environments: dict[str, HostEnvironment], agent: str, engine: bool | None = None
    ) -> None:
        offered = {k: v.model_dump(mode="json") for k, v in environments.items()}
        self.service.host_seen(self._me(), offered, agent, engine)

    def job(self, job_id: str) -> Job:
        return self.service.host_job(self._me(), job_id)

    def dataset(self, name: str) -> Dataset:
        return self.service.host_dataset(self._me(), name)

    def job_image(self, job_id: str) -> ImageRecord | None:
        self.job(job_id)
        return self.service.job_image(job_id)

    def fetch_bundle(self, job: Job, digest: str, store: ArtifactStore) -> Path:
        self.job(job.id)
        return self._copy(digest, store, f"the bundle of job {job.id}")

    def _copy(self, digest: str, store: ArtifactStore, what: str) -> Path:
        if not store.has(digest):
            with self._artifacts.open(digest) as source, store.stage(source, 1 << 40) as staged:
                if staged.digest != digest:
                    raise IntegrityError(f"{what} is not {digest}")
                staged.commit()
        return store.path(digest)

    def claim(self, job_id: str, worker: str, lease_s: float) -> Claim:
        self.job(job_id)
        return self.service.claim(job_id, worker, lease_s)

    def heartbeat(self, job_id: str, worker: str, fence: int, lease_s: float) -> Job:
        self.job(job_id)
        return self.service.heartbeat(job_id, worker, fence, lease_s)

    def finish(self, job_id: str, fence: int, outcome: Outcome, signature: str) -> Finished:
        self.job(job_id)
        job = self.service.finish(job_id, fence, outcome, host=self._me(), signature=signature)
        return Finished(job)

    def lease_dryrun(self, job_id: str, worker: str, lease_s: float) -> bool:
        self.job(job_id)
        return self.service.lease_dryrun(job_id, worker, lease_s)

    def dryrun_of(self, job_id: str) -> DryRun | None:
        self.job(job_id)
        return self.service.dryrun_of(job_id)

    def record_dryrun(self, dryrun: DryRun) -> None:
        self.job(dryrun.job_id)
        self.service.record_dryrun(dryrun)

    def upload(self, job_id: str, kind: UploadKind, digest: str, path: Path) -> None:
        cap = self.service.upload_allowed(self._me(), job_id, kind, digest)
        store = self._artifacts
        if kind == "review":
            # Kept apart from released artifacts, as PUT /v1/host/jobs/ID/reviews/DIGEST does.
            if self._review is None:
                raise AssertionError("this port was made without the control plane's review store")
            store = self._review
        with path.open("rb") as source, store.stage(source, cap) as staged:
            if staged.digest != digest:
                raise IntegrityError(f"the {kind} of job {job_id} is not {digest}")
            staged.commit()

    def images_in_use(self) -> set[str]:
        return self.service.images_in_use(self.host)

    def preparation(self, prep_id: str) -> dict[str, Any]:
        return self.preparations.of(self.host, prep_id).inputs()

    def fetch_preparation(self, prep_id: str, what: str, digest: str, store: ArtifactStore) -> Path:
        prep = self.preparations.of(self.host, prep_id)
        if digest not in (prep.bundle_digest, prep.archive_digest):
            raise NotFound(f"preparation {prep_id} has no {what} {digest}")
        return self._copy(digest, store, f"the {what}")

    def answer_preparation(
        self,
        prep_id: str,
        *,
        record: ImageRecord | None = None,
        error: tuple[str, str] | None = None,
    ) -> None:
        prep = self.preparations.of(self.host, prep_id)
        prep.record, prep.error = record, error
        prep.answered.set()
