"""The records of the job domain: users, datasets and their policy, jobs, approvals, outcomes.

All are pydantic v2 models, frozen and ``extra="forbid"``, with a ``schema_version`` because
they are stored and sent. Times are Unix seconds (float). Digests are ``sha256:<hex>``.
``JobSpec`` lives in ``jobs.spec`` and is re-exported here.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from jobs.digests import Digest
from jobs.fields import (
    FROZEN,
    SCHEMA_VERSION,
    Bytes,
    Cpus,
    Name,
    RelativePattern,
    Seconds,
)
from jobs.output_checks import CheckResult, OutputChecks
from jobs.spec import METRICS_FILE, JobSpec, Resources
from jobs.states import JobState

__all__ = [
    "METRICS_FILE",
    "Approval",
    "Caps",
    "Dataset",
    "DatasetPolicy",
    "Job",
    "JobSpec",
    "JobState",
    "Outcome",
    "OutputFile",
    "Resources",
    "Role",
    "TrustedCode",
    "User",
]

MAX_METRICS = 1000
DEFAULT_MAX_METRICS = 100
MAX_REASON_CHARS = 2000


class Role(StrEnum):
    """What a user may do: ``admin`` everything, ``owner`` own datasets, ``researcher`` jobs."""

    ADMIN = "admin"
    OWNER = "owner"
    RESEARCHER = "researcher"


class User(BaseModel):
    """A person or service holding a token. The token itself is never part of the model."""

    model_config = FROZEN

    schema_version: Literal[1] = SCHEMA_VERSION
    name: Name
    role: Role
    created: float


class Caps(BaseModel):
    """Per-dataset upper bounds on a job's resources; ``None`` leaves the host limit."""

    model_config = FROZEN

    cpus: Cpus | None = None
    memory: Bytes | None = None
    timeout: Seconds | None = None
    outputs: Bytes | None = None


class DatasetPolicy(BaseModel):
    """What the data owner allows for jobs on one dataset.

    - ``review_outputs``: ``True`` (the default) means the owner releases outputs by hand
      (``c2d release``); ``False`` (``--release-on-success``) means outputs are released as
      soon as the job succeeds and every output check passed. A stored policy keeps the value
      it was registered with: the field is always written.
    - ``checks``: the automatic output checks the data host runs on a succeeded run's outputs
      (``jobs.output_checks``); their results are shown to the owner and go into the ledger
      with the release.
    - ``logs_visible``: ``"owner"`` keeps logs to the owner until release, ``"researcher"``
      lets the job's researcher read them at any time.
    - ``schema`` (attribute ``schema_view``): how much of the data's shape researchers see.
    - ``public_values``: columns whose real values the owner publishes (in the schema and in
      mock data), ``{file path or "*": [column, ...]}``; see ``jobs.profile``.
    - ``host``: the data host (and Celery queue) whose worker runs the jobs.
    - ``max_metrics``: most keys a job's ``metrics.json`` may hold (each a short identifier).
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )

    schema_version: Literal[1] = SCHEMA_VERSION
    owner: Name
    review_outputs: bool = True
    logs_visible: Literal["owner", "researcher"] = "owner"
    # "schema" would shadow a BaseModel attribute, hence the alias.
    schema_view: Literal["hidden", "columns", "stats"] = Field(default="columns", alias="schema")
    caps: Caps = Field(default_factory=Caps)
    host: Name = "default"
    public_values: dict[str, list[str]] = Field(default_factory=dict)
    max_metrics: int = Field(default=DEFAULT_MAX_METRICS, ge=1, le=MAX_METRICS)
    checks: OutputChecks = Field(default_factory=OutputChecks)

    def public_dump(self) -> dict[str, Any]:
        """The policy as every user and the public ledger see it.

        While the schema is hidden, the public columns stay out: their names are the schema.
        """
        hidden = self.schema_view == "hidden"
        return self.model_dump(mode="json", exclude={"public_values"} if hidden else None)


class Dataset(BaseModel):
    """A registered dataset: where it is on its data host, what it hashed to, its policy."""

    model_config = FROZEN

    schema_version: Literal[1] = SCHEMA_VERSION
    name: Name
    path: str
    digest: Digest
    files: int = Field(ge=0)
    bytes: int = Field(ge=0)
    policy: DatasetPolicy
    registered: float
    registered_by: Name

    @property
    def owner(self) -> str:
        """The dataset owner's user name."""
        return self.policy.owner


class Approval(BaseModel):
    """An approval binding the exact code, image, dataset and params a job may run with."""

    model_config = FROZEN

    schema_version: Literal[1] = SCHEMA_VERSION
    job_id: str
    approver: Name
    code_digest: Digest
    image_id: str = Field(min_length=1)
    dataset_digest: Digest
    params_digest: Digest
    note: str = ""
    by_policy: bool = False
    time: float


class TrustedCode(BaseModel):
    """A code digest the owner trusts on one dataset, for one researcher: that researcher's
    later jobs with this code (and ``params_digest``, unless it is ``None``: any params) are
    approved by policy, in the name of ``trusted_by``. ``job_id`` is the job it was set on.

    Never for jobs of the dataset's owner or of ``trusted_by`` (``jobs.review``).
    """

    model_config = FROZEN

    schema_version: Literal[1] = SCHEMA_VERSION
    dataset: Name
    code_digest: Digest
    researcher: Name
    params_digest: Digest | None
    trusted_by: Name
    job_id: str
    time: float

    @property
    def any_params(self) -> bool:
        """Whether the trust holds whatever the params."""
        return self.params_digest is None

    def covers(self, params_digest: str) -> bool:
        """Whether a job with ``params_digest`` falls under this trust (code and researcher
        are matched by the store)."""
        return self.params_digest is None or self.params_digest == params_digest


class OutputFile(BaseModel):
    """One collected output: its name under ``/outputs``, content digest and size."""

    model_config = FROZEN

    name: RelativePattern
    sha256: Digest
    bytes: int = Field(ge=0)


class Outcome(BaseModel):
    """How a run ended, as reported by the worker to ``Service.finish``.

    ``succeeded`` is the worker's verdict; it requires exit code 0, no OOM and no timeout.
    ``reason`` is for people (``exited with code 3``, ``killed: timed out after 600 s``): a
    fixed sentence with bounded, escaped details. ``ran`` says whether the job's code ran on the
    private data: if it did, everything here is derived from that data and stays with the
    dataset's owner until release (``jobs.access.sees_results``); if the run was refused before
    the container started, the reason is c2d's own. ``checks`` are the dataset's automatic
    output checks as the data host ran them on the collected outputs (``jobs.output_checks``);
    they are derived from the data too.
    """

    model_config = FROZEN

    schema_version: Literal[1] = SCHEMA_VERSION
    succeeded: bool
    exit_code: int | None
    oom: bool = False
    timed_out: bool = False
    reason: str = Field(min_length=1, max_length=MAX_REASON_CHARS)
    duration_s: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    outputs: list[OutputFile] = Field(default_factory=list)
    metrics: dict[Annotated[str, Field(min_length=1)], float] = Field(default_factory=dict)
    log_digest: Digest | None = None
    log_truncated: bool = False
    ran: bool = True
    checks: list[CheckResult] = Field(default_factory=list, max_length=20)

    @field_validator("metrics")
    @classmethod
    def _finite_metrics(cls, value: dict[str, float]) -> dict[str, float]:
        if len(value) > MAX_METRICS:
            raise ValueError(f"at most {MAX_METRICS} metrics, got {len(value)}")
        bad = sorted(k for k, v in value.items() if not math.isfinite(v))
        if bad:
            raise ValueError(f"metrics must be finite numbers; not finite: {', '.join(bad)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Outcome:
        if self.succeeded and (self.exit_code != 0 or self.oom or self.timed_out):
            raise ValueError("a succeeded outcome needs exit code 0, no OOM and no timeout")
        names = [o.name for o in self.outputs]
        if len(set(names)) != len(names):
            raise ValueError("output names must be unique")
        return self


class Job(BaseModel):
    """A submitted job and everything the store knows about it.

    ``spec.params`` are the effective parameters (job.yaml merged with command-line ones);
    ``params_digest`` is their canonical digest. ``fence`` grows by one on every claim, so a
    worker holding an older fence knows it lost the job. ``withheld`` marks a copy made for a
    reader who may not see the outcome yet (``jobs.queries``): its outcome is gone and its
    reason says why.
    """

    model_config = FROZEN

    schema_version: Literal[1] = SCHEMA_VERSION
    id: str
    name: Name
    researcher: Name
    dataset: Name
    state: JobState
    reason: str | None = None
    spec: JobSpec
    code_digest: Digest
    image_id: str = Field(min_length=1)
    dataset_digest: Digest
    params_digest: Digest
    bundle_files: list[str] = Field(default_factory=list)
    lease_owner: str | None = None
    lease_expires: float | None = None
    fence: int = 0
    attempts: int = 0
    outcome: Outcome | None = None
    approval: Approval | None = None
    created: float
    updated: float
    started: float | None = None
    finished: float | None = None
    withheld: bool = False  # never stored: set when the reader may not see the outcome yet
