"""Reading jobs as a given user may see them, and the checks before logs and downloads."""

from __future__ import annotations

from jobs import access
from jobs.errors import Conflict, NotAllowed
from jobs.images import ImageRecord
from jobs.models import Dataset, Job, User
from jobs.service_core import ServiceCore
from jobs.states import JobState

WITHHELD = (
    "the run's result (reason, exit code, metrics, outputs) stays with the data owner until "
    "they release it"
)


def as_seen_by(actor: User, job: Job, dataset: Dataset) -> Job:
    """``job`` as ``actor`` may read it: without its outcome until the owner releases it."""
    if job.outcome is None or access.sees_results(actor, job, dataset):
        return job
    # A cancelled job's reason is the words of whoever cancelled it or refused its outputs,
    # never the run's.
    reason = job.reason if job.state is JobState.CANCELLED else WITHHELD
    return job.model_copy(update={"outcome": None, "reason": reason, "withheld": True})


class Queries(ServiceCore):
    """Read-only views, filtered by who asks."""

    def get_job(self, actor: User, job_id: str) -> Job:
        """The job, if ``actor`` is its researcher, its dataset's owner or an admin, as they
        may read it (``as_seen_by``).

        Raises ``NotFound`` otherwise (also for jobs that exist), so ids do not leak.
        """
        return as_seen_by(actor, *self._visible(actor, job_id))

    def list_jobs(
        self,
        actor: User,
        state: JobState | None = None,
        *,
        dataset: str | None = None,
        limit: int | None = None,
    ) -> list[Job]:
        """The jobs ``actor`` may see, oldest first, as they may read them: admins all, owners
        those on their datasets and their own, researchers their own. ``dataset`` keeps that
        dataset's; ``limit`` the newest ``limit`` of them (still oldest first)."""
        if access.is_admin(actor):
            found = self._store.list_jobs(state=state, dataset=dataset)
            return found[-limit:] if limit else found
        mine = self._store.list_jobs(state=state, researcher=actor.name, dataset=dataset)
        governed = self._store.list_jobs(state=state, owner=actor.name, dataset=dataset)
        unique = {job.id: job for job in [*mine, *governed]}
        datasets: dict[str, Dataset] = {}
        shown = []
        for job in sorted(unique.values(), key=lambda job: (job.created, job.id)):
            its = datasets.get(job.dataset) or self._dataset(job.dataset)
            datasets[job.dataset] = its
            shown.append(as_seen_by(actor, job, its))
        return shown[-limit:] if limit else shown

    def review_queue(self, actor: User) -> list[Job]:
        """What waits for ``actor``'s decision, oldest first: pending jobs (to approve or
        reject) and succeeded jobs whose outputs wait for release, on the datasets ``actor``
        governs (all datasets for admins). Researchers govern none, so theirs is empty."""
        owner = None if access.is_admin(actor) else actor.name  # governs: owner or admin
        waiting = [
            *self._store.list_jobs(state=JobState.PENDING, owner=owner),
            *self._store.list_jobs(state=JobState.SUCCEEDED, owner=owner),
        ]
        return sorted(waiting, key=lambda job: (job.created, job.id))

    def authorize_outputs(self, actor: User, job_id: str) -> Job:
        """The job, with its outcome, if ``actor`` may read what its outputs hold: the
        dataset's owner and admins (reviewing them before release), or whoever sees the job
        once they are released.

        Raises ``NotFound`` (cannot see the job) or ``Conflict`` (nothing released yet).
        """
        job, dataset = self._visible(actor, job_id)
        if access.governs(actor, dataset):
            return job
        return self.authorize_download(actor, job_id)

    def last_approved_for(
        self, researcher: str, dataset: str, exclude: str | None = None
    ) -> Job | None:
        """This researcher's most recently approved job on this dataset, other than
        ``exclude`` (for the diff ``c2d review`` shows). No permission check: the caller
        has already shown the job under review to its owner."""
        return self._store.last_approved_for(researcher, dataset, exclude)

    def job_image(self, job_id: str) -> ImageRecord | None:
        """The job's own image (built or loaded at submission), or None. No permission
        check: callers have already loaded the job for their actor."""
        return self._store.job_image(job_id)

    def bundle_digest(self, job: Job) -> str:
        """The digest the job's code bundle is stored under: the code digest itself, unless
        the job brings its own image (then the code digest covers bundle and image)."""
        image = self._store.job_image(job.id)
        return job.code_digest if image is None else image.bundle_digest

    def images_in_use(self, host: str | None = None) -> set[str]:
        """Image IDs bound by pending, approved or running jobs (never to be removed), of data
        host ``host``'s datasets if given."""
        return self._store.image_ids_in_states(
            (JobState.PENDING, JobState.APPROVED, JobState.RUNNING), host
        )

    def load_job(self, job_id: str) -> Job:
        """The job, for workers and the reconciler (no permission check); ``NotFound``."""
        return self._job(job_id)

    def authorize_logs(self, actor: User, job_id: str) -> Job:
        """The job if ``actor`` may read its logs under the dataset's policy.

        Raises ``NotFound`` (cannot see the job) or ``NotAllowed`` (logs not yet visible).
        """
        job, dataset = self._visible(actor, job_id)
        if not access.can_read_logs(actor, job, dataset):
            raise NotAllowed(
                f"the logs of job {job_id} stay with the owner of dataset {dataset.name!r} "
                "until its outputs are released"
            )
        return job

    def authorize_download(self, actor: User, job_id: str) -> Job:
        """The job if its outputs are released and ``actor`` may see it.

        Raises ``NotFound`` (cannot see the job) or ``Conflict`` (not released yet).
        """
        job, dataset = self._visible(actor, job_id)
        if job.state is not JobState.RELEASED:
            hint = (
                f"the owner of dataset {dataset.name!r} releases them with `c2d release {job_id}`"
                if job.state is JobState.SUCCEEDED
                else "only a succeeded job's outputs are ever released"
            )
            raise Conflict(f"job {job_id} is {job.state.value}: nothing is released yet; {hint}")
        return job
