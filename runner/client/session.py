"""The Python client a researcher (or a data owner) starts a notebook with.

```python
from runner.client import connect      # reads what `c2d login` saved
c = connect()
job = c.submit("jobs/diabetes", dataset="patients", params={"max_depth": 8})
job.wait()                             # pushed by the server; a progress line in notebooks
job.metrics
result = job.fetch("out")              # every digest and the receipt verified
model = result.load_model(trusted=[...])
c.dataset("patients").schema(); c.dataset("patients").mock("mock/")
```

A ``Session`` holds one ``Client`` (``runner.client.api``); ``JobHandle`` and
``DatasetHandle`` are handles on one job and one dataset, whose data are the pydantic models
of ``jobs.views``. Every check is the library's own, the same the CLI makes:
``runner.client.submission`` (the spec, the bundle, the code the server recorded),
``runner.client.follow`` (pushed events, polling when the push breaks),
``runner.client.verify`` (digests and the receipt against the key pinned at login, and the
log's consistency with the checkpoint kept from the last fetch).
Errors are c2d's (``runner.errors``, ``jobs.errors``), each with its ``kind``.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.views import DatasetView, JobView, SchemaView
from runner.client.api import Client
from runner.client.config import ClientEnv, check_url, resolve_connection
from runner.client.consistency import KeptCheckpoints
from runner.client.follow import Watcher, follow
from runner.client.results import Result
from runner.client.signing import Signer
from runner.errors import JobFailed, NoToken, NotReady

if TYPE_CHECKING:
    from jobs.mock import MockResult


def connect(
    url: str | None = None,
    token: str | None = None,
    *,
    timeout: float = 30.0,
    environ: dict[str, str] | None = None,
) -> Session:
    """A session on the server `c2d login` saved (or ``C2D_URL``/``C2D_TOKEN``, or the
    arguments, strongest first). The ledger key pinned at login is the one receipts are
    checked against; the key `c2d login` made signs submissions and decisions
    (``runner.client.signing``; none: they go unsigned); fetches keep the log's checkpoint
    beside the config, as `c2d fetch` does, and check the log still extends it. Raises
    ``NoToken`` when no token is found anywhere."""
    env = ClientEnv.read(environ)
    conn = resolve_connection(url, token, env)
    if not conn.token:
        raise NoToken(
            "no API token: run `c2d login URL --with-token` once, or set C2D_TOKEN, or pass "
            "connect(url, token)"
        )
    pinned = base64.b64decode(conn.public_key) if conn.public_key else None
    return Session(
        Client(check_url(conn.url), conn.token, timeout, signer=Signer(env)),
        pinned_key=pinned,
        kept=KeptCheckpoints.beside(conn.config_file),
    )


class Session:
    """A signed-in connection to one c2d API; use as a context manager or ``close()`` it.

    ``kept``: where fetches keep the log's last checkpoint per server (None: not checked).
    """

    def __init__(
        self,
        client: Client,
        *,
        pinned_key: bytes | None = None,
        kept: KeptCheckpoints | None = None,
    ) -> None:
        self.client = client
        self.pinned_key = pinned_key
        self.kept = kept

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()

    def __repr__(self) -> str:
        return f"<c2d session {self.client.url}>"

    def me(self) -> dict[str, Any]:
        """``{"name", "role"}`` of the token's user."""
        return self.client.me()

    def submit(
        self,
        folder: str | Path,
        *,
        dataset: str | None = None,
        params: dict[str, Any] | None = None,
        image_archive: str | Path | None = None,
    ) -> JobHandle:
        """Validate ``folder/job.yaml``, pack the folder, submit it; the job's handle.

        ``dataset`` and ``params`` override job.yaml's (params are merged over its own).
        Raises ``SpecError`` for a bad job.yaml, ``IntegrityError`` if the server recorded
        other code than was packed."""
        from runner.client.submission import prepare, send

        prepared = prepare(folder, dataset=dataset, params=params)
        archive = Path(image_archive) if image_archive is not None else None
        return JobHandle(
            self, JobView.model_validate(send(self.client, prepared, image_archive=archive))
        )

    def job(self, job_id: str) -> JobHandle:
        """The handle of job ``job_id`` (``ApiError`` not found for one you may not see)."""
        return JobHandle(self, JobView.model_validate(self.client.job(job_id)))

    def jobs(
        self, state: str | None = None, *, dataset: str | None = None, limit: int | None = None
    ) -> list[JobHandle]:
        """The jobs you may see, oldest first (``limit``: the newest that many)."""
        found = self.client.jobs(state, dataset=dataset, limit=limit)
        return [JobHandle(self, JobView.model_validate(j)) for j in found]

    def dataset(self, name: str) -> DatasetHandle:
        """The handle of dataset ``name`` (nothing is asked of the server yet)."""
        return DatasetHandle(self, name)

    def datasets(self) -> list[DatasetView]:
        """Every registered dataset."""
        return [DatasetView.model_validate(d) for d in self.client.datasets()]


class JobHandle:
    """One job: its last known view (``view``), and what can be done with it."""

    def __init__(self, session: Session, view: JobView) -> None:
        self.session = session
        self.view = view

    def __repr__(self) -> str:
        return f"<c2d job {self.id} {self.view.name}: {self.state}>"

    @property
    def id(self) -> str:
        return self.view.id

    @property
    def state(self) -> str:
        """The state when last seen (``refresh`` or ``wait`` to see it again)."""
        return self.view.state.value

    @property
    def metrics(self) -> dict[str, float] | None:
        """The run's metrics, once the job ran and you may see them.

        Raises ``NotReady`` while the job has not ended, or while its result is the data
        owner's alone (until they release it)."""
        view = self.view
        if view.withheld:
            raise NotReady(f"job {self.id}: {view.reason}")
        if view.outcome is None:
            raise NotReady(f"job {self.id} is {self.state}: it has no result yet (`job.wait()`)")
        return view.outcome.metrics

    def refresh(self) -> JobView:
        """Ask the server for the job again."""
        self.view = JobView.model_validate(self.session.client.job(self.id))
        return self.view

    def wait(
        self,
        *,
        timeout: float | None = None,
        progress: Watcher | bool | None = None,
        logs: bool = False,
        check: bool = True,
    ) -> JobView:
        """Follow the job until it ends (the server pushes every change; polling takes over
        if the push breaks, and the progress says so); return its last view.

        ``progress``: a ``runner.client.follow.Watcher``, or True for a line updated in place
        in a notebook (None: that in a notebook, nothing elsewhere). With ``logs`` the
        progress also gets the job's live log, if you may read it. With ``check`` a job that
        failed, was rejected or cancelled raises ``JobFailed`` with its reason."""
        from runner.client.progress import default_progress

        watcher: Watcher | None
        if progress is None or isinstance(progress, bool):
            watcher = None if progress is False else default_progress(force=progress is True)
        else:
            watcher = progress
        done = follow(self.session.client, self.id, watcher, logs=logs, timeout=timeout)
        self.view = JobView.model_validate(done.job)
        if check and self.view.failed:
            raise JobFailed(f"job {self.id} {self.state}: {self.view.reason}")
        return self.view

    def logs(self) -> str:
        """The job's log: kept when it ended, what it wrote so far while it runs (per the
        dataset's policy: ``ApiError`` not allowed otherwise, and a conflict while it runs on a
        dataset without live logs, whose logs stay on the data host until the job ended)."""
        return self.session.client.log_piece(self.id).text

    def follow_logs(self, show: Callable[[str], None] = print) -> JobView:
        """Hand the job's log to ``show`` piece by piece as it comes, until the job ends (on a
        dataset without live logs, all of it once the job ended)."""
        watcher = _LogTo(show)
        done = follow(self.session.client, self.id, watcher, logs=True, rest=True)
        self.view = JobView.model_validate(done.job)
        return self.view

    def cancel(self, reason: str | None = None) -> JobView:
        """Cancel the job if it has not ended."""
        self.view = JobView.model_validate(self.session.client.cancel(self.id, reason))
        return self.view

    def fetch(self, folder: str | Path, *, key: bytes | None = None) -> Result:
        """Download the released outputs, metrics.json and receipt.json into ``folder``, each
        digest checked against the outcome and the receipt, the receipt against ``key`` (or
        the key pinned at login), the log against the checkpoint kept from the last fetch.
        Raises ``NotReady`` before release, ``IntegrityError`` when any check fails; nothing
        half-checked is left under a final name."""
        from runner.client.verify import fetch_verified

        pinned = key if key is not None else self.session.pinned_key
        got = fetch_verified(
            self.session.client,
            self.id,
            Path(folder),
            key=pinned,
            key_source="given" if key is not None else "pinned",
            kept=self.session.kept,
        )
        self.view = JobView.model_validate(got.job)
        return Result(got)


class _LogTo:
    """A watcher that hands log pieces to a function and says nothing else."""

    def __init__(self, show: Callable[[str], None]) -> None:
        self.show = show

    def job(self, job: dict[str, Any]) -> None:
        pass

    def log(self, text: str) -> None:
        self.show(text)

    def note(self, text: str) -> None:
        pass


class DatasetHandle:
    """One dataset by name: its record, its schema as you may see it, mock data from that."""

    def __init__(self, session: Session, name: str) -> None:
        self.session = session
        self.name = name

    def __repr__(self) -> str:
        return f"<c2d dataset {self.name}>"

    def info(self) -> DatasetView:
        """The dataset's record: owner, digest, size, policy."""
        return DatasetView.model_validate(self.session.client.dataset(self.name))

    def schema(self) -> SchemaView:
        """Its files and columns, as much as its policy lets you see."""
        return SchemaView.model_validate(self.session.client.schema(self.name))

    def mock(self, folder: str | Path, *, rows: int | None = None, seed: int = 0) -> MockResult:
        """Write synthetic files shaped like the dataset into ``folder`` (made here from the
        schema alone: no value of the data beyond what the schema shows)."""
        from runner.client.mock import mock_from_schema

        doc = self.session.client.schema(self.name)
        return mock_from_schema(doc, Path(folder), rows=rows, seed=seed)
