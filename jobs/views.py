"""The job domain as the API shows it: the models a client reads the JSON documents into.

The API builds these documents from ``jobs.models`` (``runner.control.api.views``): times
become RFC 3339 strings, a job's lease bookkeeping stays inside, the outcome is withheld from a
reader who may not see it yet (``jobs.queries.as_seen_by``). The Python client
(``runner.client.session``) validates them into these frozen models, reusing ``JobSpec`` and
``DatasetProfile``, so a notebook user gets typed objects and the same checks on every field.

Fields a newer server adds are ignored (``extra="ignore"``), so an older client keeps working;
a unit test holds the API's documents and these models to the same fields.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from jobs.profile import DatasetProfile
from jobs.spec import JobSpec
from jobs.states import JobState

READ = ConfigDict(frozen=True, extra="ignore")


class OutputView(BaseModel):
    """One collected output: its name under ``/outputs``, digest and size."""

    model_config = READ

    name: str
    sha256: str
    bytes: int


class CheckView(BaseModel):
    """One automatic output check's result (``jobs.output_checks``), for the data owner."""

    model_config = READ

    check: str
    passed: bool
    detail: str = ""


class OutcomeView(BaseModel):
    """How a run ended; ``metrics`` is None when the job left no metrics file."""

    model_config = READ

    exit_code: int | None
    oom: bool = False
    timed_out: bool = False
    reason: str
    duration_s: float
    outputs: list[OutputView] = Field(default_factory=list)
    metrics: dict[str, float] | None = None
    log_truncated: bool = False
    checks: list[CheckView] = Field(default_factory=list)


class ApprovalView(BaseModel):
    """Who approved a job, with which note, whether by policy, and when."""

    model_config = READ

    approver: str
    note: str = ""
    by_policy: bool = False
    time: datetime | None = None


class JobView(BaseModel):
    """A job as its reader may see it (``GET /v1/jobs/ID``)."""

    model_config = READ

    id: str
    name: str
    researcher: str
    dataset: str
    state: JobState
    reason: str | None = None
    code_digest: str
    image_id: str
    dataset_digest: str
    params_digest: str
    spec: JobSpec
    created: datetime
    updated: datetime
    started: datetime | None = None
    finished: datetime | None = None
    approval: ApprovalView | None = None
    outcome: OutcomeView | None = None
    withheld: bool = False  # True while the run's result is the data owner's alone

    @property
    def ended(self) -> bool:
        """Whether nothing more happens to the job on its own (it may still be released)."""
        return self.state in ENDED

    @property
    def failed(self) -> bool:
        """Failed, rejected or cancelled."""
        return self.state in FAILED


class DatasetView(BaseModel):
    """A registered dataset (``GET /v1/datasets/NAME``), without its host path."""

    model_config = READ

    name: str
    owner: str
    digest: str
    files: int
    bytes: int
    policy: dict[str, Any]
    created: datetime | None = None


class SchemaView(BaseModel):
    """What the reader may see of a dataset's files and columns
    (``GET /v1/datasets/NAME/schema``): the whole profile for its owner, the policy's level
    (``schema``: hidden, columns or stats) for everyone else."""

    model_config = READ

    dataset: str
    dataset_digest: str
    schema_level: str = Field(alias="schema")
    full: bool
    schema_digest: str
    profile: DatasetProfile
    public_values: dict[str, list[str]] | None = None


ENDED = frozenset(
    {JobState.SUCCEEDED, JobState.RELEASED, JobState.FAILED, JobState.REJECTED, JobState.CANCELLED}
)
FAILED = frozenset({JobState.FAILED, JobState.REJECTED, JobState.CANCELLED})
