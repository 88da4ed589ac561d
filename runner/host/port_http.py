"""The control plane over HTTP, as a data host calls it (``ControlPort``), and enrollment.

Every call goes out from the host to the API's ``/v1/host/...`` routes
(``runner.control.api.hosting``) with the host's own credential; nothing connects in. The
answers become the same values and errors the in-process ``ServicePort`` gives:

- a lease the host no longer holds (409 with ``lease_lost``) is ``LeaseLost`` (``cancelled``
  kept), another 409 ``Conflict``, 404 ``NotFound``, 401/403 the host's credential refused;
- an API that does not answer (refused, timed out, 5xx) is ``ServiceUnavailable``: the
  pipeline keeps the outcome in its outbox and tries again later.

The API's answers are checked as a host checks anything it did not make: every JSON body is
read into its model, and every bundle is hashed while it is copied and kept only if it is the
digest the approval bound.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import httpx

from jobs.errors import Conflict, InvalidRequest, LeaseLost, NotAllowed, NotFound
from jobs.execution import Claim
from jobs.host_records import HostEnvironment
from jobs.images import ImageRecord
from jobs.models import Dataset, Job, Outcome
from jobs.schema_records import DryRun
from ledger.kinds import ErrorKind
from runner.artifacts import ArtifactStore
from runner.client.http import api_error, unavailable
from runner.errors import ApiError, IntegrityError, ServiceUnavailable
from runner.host.port import Finished, UploadKind
from runner.wire import SHA256_HEADER

TIMEOUT_S = 30.0
MAX_BLOB_BYTES = 1 << 36  # bundles and archives are capped far lower; this bounds a liar


def _client(url: str, credential: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {credential}"} if credential else {}
    return httpx.Client(
        base_url=url.rstrip("/"),
        headers=headers,
        timeout=httpx.Timeout(TIMEOUT_S, connect=5.0),
        follow_redirects=False,
    )


def _error(response: httpx.Response) -> Exception:
    """The c2d error an error answer stands for, as the host's pipeline expects it."""
    error: ApiError = api_error(response)
    body: dict[str, Any] = {}
    try:
        loaded = response.json()
        body = loaded.get("error", {}) if isinstance(loaded, dict) else {}
    except ValueError:
        pass
    if response.status_code >= 500 or error.kind is ErrorKind.UNAVAILABLE:
        return ServiceUnavailable(f"the control plane answered {error.message}")
    lease = body.get("lease_lost") if isinstance(body, dict) else None
    if isinstance(lease, dict):
        return LeaseLost(error.message, cancelled=bool(lease.get("cancelled")))
    by_kind: dict[ErrorKind, type[Exception]] = {
        ErrorKind.CONFLICT: Conflict,
        ErrorKind.NOT_FOUND: NotFound,
        ErrorKind.NOT_ALLOWED: NotAllowed,
        ErrorKind.INVALID: InvalidRequest,
    }
    cls = by_kind.get(error.kind)
    return cls(error.message) if cls is not None else error


def enroll_call(api_url: str, token: str, public_key: str) -> dict[str, Any]:
    """``POST /v1/hosts/enroll`` with the one-time token; the host's name, credential and the
    installation's origin and id (``runner.host.identity.enroll``)."""
    with _client(api_url) as http:
        try:
            response = http.post(
                "/v1/hosts/enroll", json={"token": token, "public_key": public_key}
            )
        except httpx.TransportError as exc:
            raise unavailable(api_url, exc) from exc
        if response.is_error:
            raise api_error(response)
        answer: dict[str, Any] = response.json()
        return answer


class HttpPort:
    """``ControlPort`` over the API at ``url``, as data host ``host`` with ``credential``."""

    def __init__(self, url: str, credential: str, host: str) -> None:
        self.url = url.rstrip("/")
        self.host = host
        self._http = _client(self.url, credential)

    def close(self) -> None:
        self._http.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, f"/v1/host{path}", **kwargs)
        except httpx.TransportError as exc:
            raise ServiceUnavailable(str(unavailable(self.url, exc))) from exc
        if response.is_error:
            raise _error(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._send(method, path, **kwargs).json()

    def hello(
        self, environments: dict[str, HostEnvironment], agent: str, engine: bool | None = None
    ) -> None:
        offered = {k: v.model_dump(mode="json") for k, v in environments.items()}
        body = {"environments": offered, "agent": agent, "engine": engine}
        self._send("POST", "/hello", json=body)

    def job(self, job_id: str) -> Job:
        return Job.model_validate(self._json("GET", f"/jobs/{job_id}"))

    def dataset(self, name: str) -> Dataset:
        return Dataset.model_validate(self._json("GET", f"/datasets/{name}"))

    def job_image(self, job_id: str) -> ImageRecord | None:
        body = self._json("GET", f"/jobs/{job_id}/image")
        return None if body is None else ImageRecord.model_validate(body)

    def fetch_bundle(self, job: Job, digest: str, store: ArtifactStore) -> Path:
        return self._fetch(f"/jobs/{job.id}/bundle", digest, store, f"the bundle of job {job.id}")

    def _fetch(self, path: str, digest: str, store: ArtifactStore, what: str) -> Path:
        """GET a blob into ``store``, kept only if it hashes to ``digest``."""
        if store.has(digest):
            return store.path(digest)
        try:
            with self._http.stream("GET", f"/v1/host{path}") as response:
                if response.is_error:
                    response.read()
                    raise _error(response)
                announced = "sha256:" + response.headers.get(SHA256_HEADER, "")
                if announced != digest:
                    raise IntegrityError(
                        f"the control plane offered {announced} as {what}, which must be "
                        f"{digest}; nothing was kept"
                    )
                with store.stage(_Reader(response), MAX_BLOB_BYTES) as staged:  # type: ignore[arg-type]
                    if staged.digest != digest:
                        raise IntegrityError(
                            f"{what} as the control plane sent it hashes to {staged.digest}, "
                            f"not {digest}; nothing was kept"
                        )
                    staged.commit()
        except httpx.TransportError as exc:
            raise ServiceUnavailable(str(unavailable(self.url, exc))) from exc
        return store.path(digest)

    def preparation(self, prep_id: str) -> dict[str, Any]:
        body: dict[str, Any] = self._json("GET", f"/preparations/{prep_id}")
        return body

    def fetch_preparation(self, prep_id: str, what: str, digest: str, store: ArtifactStore) -> Path:
        return self._fetch(f"/preparations/{prep_id}/{what}", digest, store, f"the {what}")

    def answer_preparation(
        self,
        prep_id: str,
        *,
        record: ImageRecord | None = None,
        error: tuple[str, str] | None = None,
    ) -> None:
        body: dict[str, Any] = (
            {"record": record.model_dump(mode="json")}
            if record is not None
            else {"error_kind": error[0], "error_message": error[1][:200_000]}  # type: ignore[index]
        )
        with contextlib.suppress(NotFound):  # the submission stopped waiting: nothing to tell
            self._send("POST", f"/preparations/{prep_id}", json=body)

    def claim(self, job_id: str, worker: str, lease_s: float) -> Claim:
        body = self._json("POST", f"/jobs/{job_id}/claim", json=_lease(worker, lease_s))
        return Claim(job=Job.model_validate(body["job"]), fence=int(body["fence"]))

    def heartbeat(self, job_id: str, worker: str, fence: int, lease_s: float) -> Job:
        payload = {**_lease(worker, lease_s), "fence": fence}
        return Job.model_validate(self._json("POST", f"/jobs/{job_id}/heartbeat", json=payload))

    def finish(self, job_id: str, fence: int, outcome: Outcome, signature: str) -> Finished:
        payload = {
            "fence": fence,
            "outcome": outcome.model_dump(mode="json"),
            "signature": signature,
        }
        return Finished(
            Job.model_validate(self._json("POST", f"/jobs/{job_id}/finish", json=payload))
        )

    def lease_dryrun(self, job_id: str, worker: str, lease_s: float) -> bool:
        body = self._json("POST", f"/jobs/{job_id}/dryrun/lease", json=_lease(worker, lease_s))
        return bool(body["leased"])

    def dryrun_of(self, job_id: str) -> DryRun | None:
        body = self._json("GET", f"/jobs/{job_id}/dryrun")
        return None if body is None else DryRun.model_validate(body)

    def record_dryrun(self, dryrun: DryRun) -> None:
        self._send("PUT", f"/jobs/{dryrun.job_id}/dryrun", json=dryrun.model_dump(mode="json"))

    def upload(self, job_id: str, kind: UploadKind, digest: str, path: Path) -> None:
        size = path.stat().st_size
        with path.open("rb") as source:
            self._send(
                "PUT",
                f"/jobs/{job_id}/{kind}s/{digest}",
                content=_chunks(source),
                headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"},
                timeout=httpx.Timeout(None, connect=5.0),
            )

    def images_in_use(self) -> set[str]:
        return set(self._json("GET", "/images-in-use"))


def _lease(worker: str, lease_s: float) -> dict[str, Any]:
    return {"worker": worker, "lease_s": lease_s}


def _chunks(source: Any, size: int = 1 << 20) -> Any:
    while chunk := source.read(size):
        yield chunk


class _Reader:
    """A streamed response as the file object ``ArtifactStore.stage`` reads."""

    def __init__(self, response: httpx.Response) -> None:
        self._chunks = response.iter_bytes(1 << 20)
        self._rest = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._rest) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._rest += chunk
        if size < 0:
            size = len(self._rest)
        data, self._rest = self._rest[:size], self._rest[size:]
        return data
