"""c2d's configuration: one typed object per process, built at the entry point.

Every field can be set with an environment variable of the same name, upper-cased, with the
`C2D_` prefix (for example `C2D_HOME`, `C2D_REDIS_URL`). Library code receives this object (or
the values it needs); it never reads the environment itself.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


class Settings(BaseSettings):
    """Settings of the API server and the workers of one c2d installation."""

    model_config = SettingsConfigDict(env_prefix="C2D_", extra="ignore", frozen=True)

    home: Path = Field(
        default=Path.home() / ".c2d",
        description="State folder: database and ledger, ledger key, artifacts, job work folders.",
    )
    dataset_roots: str = Field(
        default="",
        description="Folders under which data owners may register datasets (absolute paths, "
        "comma-separated; a dataset lies strictly inside one, never a root itself). None set: "
        "no dataset can be registered, and datasets outside the roots do not run.",
    )
    origin: str = Field(
        default_factory=lambda: f"c2d/{socket.gethostname()}",
        description="Name of the ledger, written into every signed checkpoint.",
    )
    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0", description="Redis used as the Celery broker."
    )
    installation: str = Field(
        default="",
        description="The installation's id, the prefix of every Redis key it writes (`c2d "
        "init` records a random one in the state folder; a data host learns it when it "
        "enrolls). Leave it unset.",
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="How the server and data hosts log: readable `text` lines, or `json`, one "
        "object per line with time, level, logger, message and, where known, job, data host "
        "and event.",
    )
    bind: str = Field(default="127.0.0.1", description="Address the API server listens on.")
    port: int = Field(default=8700, description="Port the API server listens on.")
    tls_cert: Path | None = Field(
        default=None,
        description="PEM certificate (chain) the API serves HTTPS with, with `C2D_TLS_KEY`. "
        "Unset: plain HTTP (keep it on loopback, or put a TLS proxy in front).",
    )
    tls_key: Path | None = Field(
        default=None, description="PEM private key of `C2D_TLS_CERT` (a file, never an argument)."
    )
    api_url: str = Field(
        default="",
        description="On a data host: the control plane's URL (set by `c2d host enroll`; this "
        "overrides it).",
    )
    data_host: str = Field(
        default="default",
        description="On a data host: its name, as enrolled (its agent sets it); the agent "
        "consumes the queue `c2d.<data_host>`.",
    )
    runtime: Literal["runc", "runsc"] = Field(
        default="runc", description="Container runtime for jobs (runsc = gVisor, stronger)."
    )
    sandbox_uid: int = Field(default=65534, description="Unprivileged uid jobs run as.")
    sandbox_gid: int = Field(default=65534, description="Unprivileged gid jobs run as.")
    lease_s: float = Field(default=30.0, description="How long a worker's claim on a job lasts.")
    reconcile_s: float = Field(default=5.0, description="How often the reconciler runs.")
    max_cpus: float = Field(default=2.0, description="Largest CPU share any job may ask for.")
    max_memory: str = Field(default="8GiB", description="Largest memory any job may ask for.")
    max_timeout: str = Field(default="6h", description="Longest deadline any job may ask for.")
    max_outputs: str = Field(
        default="2GiB", description="Largest output total any job may ask for."
    )
    max_bundle: str = Field(default="50MiB", description="Largest code bundle accepted.")
    tmp_size: str = Field(default="256MiB", description="Size of each job's /tmp (in memory).")
    redispatch_s: float = Field(
        default=15.0,
        description="How long an approved job may sit unclaimed and off the queue before the "
        "reconciler sends it to its data host's queue again.",
    )
    host_lost_s: float = Field(
        default=600.0,
        description="How long a running job's lease may stay expired (its data host silent) "
        "before the control plane fails it.",
    )
    host_stale_s: float = Field(
        default=60.0,
        description="How long after its last hello an enrolled data host counts as gone: "
        "`/v1/ready` is then not ready (a live agent says hello every `reconcile_s`).",
    )
    heartbeat_s: float = Field(
        default=0.0,
        description="How often a worker renews its lease on a running job; 0 means a third of "
        "`lease_s` (at most 10 s). Cancellations reach the job's container this fast.",
    )
    byo_allowed_bases: str = Field(
        default="c2d/python-ml:latest",
        description="Base images a job's own Dockerfile may start FROM (or an image archive "
        "may extend), comma-separated names or image IDs.",
    )
    byo_max_build_s: int = Field(default=900, description="Longest build of a job's image.")
    byo_max_image: str = Field(default="4GiB", description="Largest image a job may bring.")
    byo_max_layers: int = Field(default=64, description="Most layers a job's image may have.")
    byo_max_archive: str = Field(
        default="4GiB", description="Largest image archive (`--image-archive`) accepted."
    )
    byo_retention_s: float = Field(
        default=86400.0,
        description="How long the image of a finished job is kept before the reconciler "
        "removes it (never while a pending, approved or running job uses it).",
    )
    profile_max_rows: int = Field(
        default=1_000_000,
        ge=0,
        description="Rows of each table read to profile a dataset when it is registered (its "
        "schema's statistics cover these; a text table's row count is then a lower bound).",
    )
    dryrun: bool = Field(
        default=True,
        description="Run every submitted job against its dataset's mock data on the data host, "
        "before review (never on the real data; the job stays pending).",
    )
    dryrun_max_rows: int = Field(
        default=10_000, ge=0, description="Most rows of each mock table a dry run gets."
    )
    dryrun_timeout: str = Field(
        default="2m",
        description="Longest a dry run may take (the job's own timeout, if shorter, applies).",
    )
    signatures: Literal["required", "keyholders"] = Field(
        default="required",
        description="When the API records a person's action (dataset registration, submit, "
        "approve, reject, trust, release) that carries no signature by their key: `required` "
        "never; `keyholders` "
        "only from a person who has not registered a key yet (recorded as unsigned, the "
        "operator's word). A person holding a key must sign under both.",
    )
    web_session_s: float = Field(
        default=43_200.0,
        gt=0,
        description="How long a browser session of the web pages lasts after its person signs "
        "in with their token (then they sign in again).",
    )

    @field_validator("dataset_roots")
    @classmethod
    def _absolute_roots(cls, value: str) -> str:
        relative = [r for r in _split(value) if not Path(r).is_absolute()]
        if relative:
            raise ValueError(
                "dataset roots must be absolute paths, comma-separated; not absolute: "
                + ", ".join(relative)
            )
        return value

    @property
    def dataset_root_paths(self) -> tuple[Path, ...]:
        """The dataset roots, as paths (empty: none set)."""
        return tuple(Path(r) for r in _split(self.dataset_roots))

    @property
    def db_path(self) -> Path:
        """The SQLite file holding both the store and the ledger."""
        return self.home / "c2d.db"

    @property
    def installation_path(self) -> Path:
        """The installation's id (``runner.installation``)."""
        return self.home / "installation"

    @property
    def key_path(self) -> Path:
        """The ledger's Ed25519 private key (mode 0600)."""
        return self.home / "ledger.key"

    @property
    def artifacts_dir(self) -> Path:
        """The content-addressed store of bundles and outputs."""
        return self.home / "artifacts"

    @property
    def work_dir(self) -> Path:
        """Per-job work folders (extracted code, params, output mounts)."""
        return self.home / "work"

    @property
    def queue(self) -> str:
        """The Celery queue this host's workers consume."""
        return f"c2d.{self.data_host}"

    @property
    def code_dir(self) -> Path:
        """Per-job extracted code bundles, mounted read-only at /code."""
        return self.home / "code"

    @property
    def mocks_dir(self) -> Path:
        """Mock data made for dry runs, one folder per dataset digest, level and row cap."""
        return self.home / "mocks"

    @property
    def dryrun_dir(self) -> Path:
        """Code of jobs being dry-run (apart from ``code_dir``, which holds approved code)."""
        return self.home / "dryrun"

    @property
    def review_dir(self) -> Path:
        """On the control plane: outputs an owner asked to review before release (kept for
        ``REVIEW_KEEP_S``, then removed by the reconciler)."""
        return self.home / "review"

    @property
    def hosts_dir(self) -> Path:
        """On a single machine (`c2d up`): the state folders of its own data hosts."""
        return self.home / "hosts"

    @property
    def host_file(self) -> Path:
        """On a data host: its name, the control plane's URL and its key's fingerprint."""
        return self.home / "host.json"

    @property
    def host_key_path(self) -> Path:
        """On a data host: its Ed25519 private key (mode 0600, never sent anywhere)."""
        return self.home / "host.key"

    @property
    def host_token_path(self) -> Path:
        """On a data host: its credential with the control plane (mode 0600)."""
        return self.home / "host.token"

    @property
    def registry_path(self) -> Path:
        """On a data host: its datasets' folders, hashes and profiles, and its outbox."""
        return self.home / "host.db"

    @property
    def build_cache_dir(self) -> Path:
        """Which image each step of a job's own Dockerfile made (``runner.host.images.build``)."""
        return self.home / "build-cache"

    @property
    def uploads_dir(self) -> Path:
        """Code bundles being received by the API, before they are checked and stored."""
        return self.home / "uploads"
