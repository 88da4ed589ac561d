"""Who may see and do what with jobs and datasets: pure rules, no storage.

- Everyone authenticated may list datasets and submit jobs.
- A job is visible to its researcher, its dataset's owner and admins; to anyone else it does
  not exist (``NotFound``, never ``NotAllowed``, so ids do not leak).
- A dataset's owner (or an admin) governs its jobs: approve, reject, trust, release or refuse
  the outputs, and read logs. Nobody approves or trusts their own job. A trust approves by
  policy only the trusted job's researcher's later jobs (same code, same params unless trusted
  for any), never the dataset owner's own jobs nor those of whoever set it (``jobs.review``).
- Whoever sees a job (its researcher, its dataset's owner, admins) may cancel it.
- The researcher reads logs when the policy says ``logs_visible: researcher``, or once the
  outputs are released.
- A running job's output leaves its data host as it comes (the live log, ``runner.livelog``)
  only where the policy says ``logs_visible: researcher``: a log is derived from the private
  data, so elsewhere nothing of it leaves the host before the job ended and someone who may
  read it asks (``live_log``).
- What a run on the private data produced (metrics, output names, sizes and digests, exit
  code, reason, duration, output checks) is the owner's alone until release, where the
  dataset holds outputs for review (the default), and on a dataset that releases on success
  while a succeeded job is held because an output check failed. A run refused before its
  container started says why to its researcher: that reason is c2d's own, not the data's.
"""

from __future__ import annotations

from jobs.models import Dataset, Job, Role, User
from jobs.states import JobState


def is_admin(actor: User) -> bool:
    """Admins may do everything except approve or trust their own jobs."""
    return actor.role is Role.ADMIN


def can_see(actor: User, job: Job, dataset: Dataset) -> bool:
    """The job's researcher, the dataset's owner and admins see a job."""
    return is_admin(actor) or actor.name in (job.researcher, dataset.owner)


def governs(actor: User, dataset: Dataset) -> bool:
    """The dataset's owner and admins decide about jobs on it."""
    return is_admin(actor) or actor.name == dataset.owner


def can_read_logs(actor: User, job: Job, dataset: Dataset) -> bool:
    """Owners and admins always; the researcher per policy or after release."""
    if governs(actor, dataset):
        return True
    if actor.name != job.researcher:
        return False
    return dataset.policy.logs_visible == "researcher" or job.state is JobState.RELEASED


def live_log(dataset: Dataset) -> bool:
    """Whether the data host publishes a running job's output on ``dataset`` as it comes: only
    when its researcher may read it at any time anyway (``logs_visible: researcher``)."""
    return dataset.policy.logs_visible == "researcher"


def may_register(actor: User) -> bool:
    """Only owners and admins register datasets."""
    return actor.role in (Role.OWNER, Role.ADMIN)


def sees_results(actor: User, job: Job, dataset: Dataset) -> bool:
    """Whether ``actor`` may see what the job's run produced (see the module docstring)."""
    if governs(actor, dataset) or job.state is JobState.RELEASED:
        return True
    if job.outcome is not None and not job.outcome.ran:
        return True
    # A dataset that releases on success holds a succeeded job whose output checks failed:
    # until its owner releases it, its result is theirs, as on a reviewed dataset.
    return not dataset.policy.review_outputs and job.state is not JobState.SUCCEEDED
