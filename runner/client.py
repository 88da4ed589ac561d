"""The c2d HTTP client: one method per route of the v1 API (see the API contract).

Every error comes back as an exception with a `kind`, so callers report it the same way as a
local error: an error response becomes `ApiError(kind, message, status)` with the server's kind
and message; a server that does not answer becomes `ServiceUnavailable` naming the URL and how to
start one. Artifact downloads stream to a temporary file beside the target, hash while writing,
resume with `Range` after a dropped connection, and reach their final name (fsync, then an
atomic rename) only when the digest matches; memory stays bounded (bytes are written as they
arrive, never gathered).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from runner.errors import ApiError, IntegrityError, ServiceUnavailable

API = "/v1"
CHUNK = 1024 * 1024
RESUME_ATTEMPTS = 5
PART_SUFFIX = ".c2d-part"

# Used when an error response does not carry the contract's {"error": {...}} body.
_STATUS_KIND = {
    400: "invalid",
    401: "unauthenticated",
    403: "not_allowed",
    404: "not_found",
    405: "invalid",
    409: "conflict",
    413: "too_large",
    422: "invalid",
    500: "failed",
    502: "unavailable",
    503: "unavailable",
    504: "unavailable",
}


class DownloadObserver(Protocol):
    """Told about a download's progress; the CLI passes a progress bar, a library caller nothing.

    `start` comes once per file before any `advance`; `advance` reports bytes written (also the
    bytes already on disk when a download resumes); `finish` comes once the file is in place.
    """

    def start(self, name: str, total: int) -> None: ...

    def advance(self, nbytes: int) -> None: ...

    def finish(self, name: str) -> None: ...


class _Silent:
    def start(self, name: str, total: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def finish(self, name: str) -> None:
        pass


@dataclass(frozen=True)
class Downloaded:
    """A file that reached its final name after its digest matched."""

    name: str
    path: Path
    sha256: str
    bytes: int


def hex_digest(digest: str) -> str:
    """`sha256:<hex>` or `<hex>` -> `<hex>` (lower case), the form compared everywhere here."""
    return digest.removeprefix("sha256:").lower()


def artifact_path(folder: Path, name: str) -> Path:
    """Where artifact `name` lands under `folder`; refuses names that would leave the folder.

    A server (or whoever sits between it and us) chooses artifact names, so they are checked
    like untrusted paths: relative, no `..`, no empty or `.` parts, no backslash or NUL.
    """
    pure = PurePosixPath(name)
    if (
        not name
        or "\\" in name
        or "\x00" in name
        or pure.is_absolute()
        or any(part in ("", ".", "..") for part in name.split("/"))
    ):
        raise IntegrityError(
            f"the server offered an artifact named {name!r}, which is not a plain relative path; "
            "nothing was downloaded; report this to the operator of the c2d server"
        )
    return folder.joinpath(*pure.parts)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that `path` is either absent/old or complete (fsync + rename)."""
    part = path.with_name(f".{path.name}{PART_SUFFIX}")
    with part.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(part, path)
    _fsync_dir(path.parent)


class Client:
    """A connection to one c2d API. Use as a context manager, or call `close()`."""

    def __init__(
        self,
        url: str,
        token: str | None,
        timeout: float = 30.0,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing --------------------------------------------------------------------------

    def _unavailable(self, exc: httpx.TransportError) -> ServiceUnavailable:
        if isinstance(exc, httpx.TimeoutException):
            return ServiceUnavailable(
                f"the c2d API at {self.url} did not answer in time ({type(exc).__name__}); "
                "check that the server is healthy, or raise --timeout"
            )
        return ServiceUnavailable(
            f"no c2d API answers at {self.url} ({exc}); start one with `c2d server` "
            "(or `c2d up` on a single machine), or point C2D_URL / `c2d login` at the right one"
        )

    def _error(self, response: httpx.Response) -> ApiError:
        status = response.status_code
        kind = _STATUS_KIND.get(status, "unavailable" if status >= 500 else "failed")
        message = ""
        try:
            body = response.json()
            error = body.get("error") if isinstance(body, dict) else None
            if isinstance(error, dict) and isinstance(error.get("kind"), str):
                kind = error["kind"]
                message = str(error.get("message") or "")
            elif isinstance(body, dict) and "detail" in body:
                message = str(body["detail"])
        except ValueError:
            message = response.text[:500].strip()
        if not message:
            message = f"HTTP {status} {response.reason_phrase}".strip()
        if status == 500:
            where = f"{response.request.method} {response.request.url.path}"
            message += f" ({where}: the server failed; its log says why)"
        return ApiError(kind, message, status)

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, API + path, **kwargs)
        except httpx.TransportError as exc:
            raise self._unavailable(exc) from exc
        if response.is_error:
            raise self._error(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise ApiError(
                "failed",
                f"{method} {path} answered with something that is not JSON; is {self.url} a "
                "c2d API?",
                response.status_code,
            ) from exc

    # -- routes ----------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """GET /v1/health: `{"ok", "version", "origin"}` (no token needed)."""
        return dict(self._json("GET", "/health"))

    def me(self) -> dict[str, Any]:
        """GET /v1/me: `{"name", "role"}` of the token's user."""
        return dict(self._json("GET", "/me"))

    def add_user(self, name: str, role: str) -> dict[str, Any]:
        """POST /v1/users (admin): `{"name", "role", "token"}`; the token is shown only once."""
        return dict(self._json("POST", "/users", json={"name": name, "role": role}))

    def environments(self) -> list[dict[str, Any]]:
        """GET /v1/environments: `[{"name", "image_id", "pins"}]`."""
        return list(self._json("GET", "/environments"))

    def add_dataset(
        self,
        name: str,
        path: str,
        *,
        review_outputs: bool = False,
        logs_visible: str = "owner",
        caps: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """POST /v1/datasets (owner/admin): register the folder `path` on the data host."""
        body: dict[str, Any] = {
            "name": name,
            "path": path,
            "review_outputs": review_outputs,
            "logs_visible": logs_visible,
        }
        if caps:
            body["caps"] = caps
        return dict(self._json("POST", "/datasets", json=body))

    def datasets(self) -> list[dict[str, Any]]:
        """GET /v1/datasets."""
        return list(self._json("GET", "/datasets"))

    def dataset(self, name: str) -> dict[str, Any]:
        """GET /v1/datasets/{name}."""
        return dict(self._json("GET", f"/datasets/{quote(name, safe='')}"))

    def submit(self, spec: dict[str, Any], bundle: bytes) -> dict[str, Any]:
        """POST /v1/jobs: the spec as JSON and the deterministic code tar; returns the Job."""
        return dict(
            self._json(
                "POST",
                "/jobs",
                data={"spec": json.dumps(spec)},
                files={"bundle": ("bundle.tar", bundle, "application/x-tar")},
            )
        )

    def jobs(self, state: str | None = None) -> list[dict[str, Any]]:
        """GET /v1/jobs[?state=]: the jobs this user may see."""
        params = {"state": state} if state else None
        return list(self._json("GET", "/jobs", params=params))

    def job(self, job_id: str) -> dict[str, Any]:
        """GET /v1/jobs/{id}."""
        return dict(self._json("GET", self._job(job_id)))

    def review(self, job_id: str) -> dict[str, Any]:
        """GET /v1/jobs/{id}/review: `{"job", "files", "previous", "diff"}` (owner/admin)."""
        return dict(self._json("GET", self._job(job_id, "review")))

    def bundle(self, job_id: str) -> bytes:
        """GET /v1/jobs/{id}/bundle: the code tar as submitted."""
        return self._send("GET", self._job(job_id, "bundle")).content

    def approve(self, job_id: str, note: str | None = None) -> dict[str, Any]:
        """POST /v1/jobs/{id}/approve: binds the exact digests; returns the Job."""
        body = {"note": note} if note else {}
        return dict(self._json("POST", self._job(job_id, "approve"), json=body))

    def reject(self, job_id: str, reason: str) -> dict[str, Any]:
        """POST /v1/jobs/{id}/reject."""
        return dict(self._json("POST", self._job(job_id, "reject"), json={"reason": reason}))

    def cancel(self, job_id: str, reason: str | None = None) -> dict[str, Any]:
        """POST /v1/jobs/{id}/cancel."""
        body = {"reason": reason} if reason else {}
        return dict(self._json("POST", self._job(job_id, "cancel"), json=body))

    def release(self, job_id: str) -> dict[str, Any]:
        """POST /v1/jobs/{id}/release: succeeded -> released."""
        return dict(self._json("POST", self._job(job_id, "release")))

    def trust(self, job_id: str) -> dict[str, Any]:
        """POST /v1/jobs/{id}/trust: `{"dataset", "code_digest"}` now approved by policy."""
        return dict(self._json("POST", self._job(job_id, "trust")))

    def logs(self, job_id: str) -> tuple[str, bool]:
        """GET /v1/jobs/{id}/logs: the log text and whether the server truncated it."""
        response = self._send("GET", self._job(job_id, "logs"))
        return response.text, response.headers.get("X-C2D-Log-Truncated", "0") == "1"

    def artifacts(self, job_id: str) -> list[dict[str, Any]]:
        """GET /v1/jobs/{id}/artifacts: `[{"name", "sha256", "bytes"}]` (released jobs only)."""
        return list(self._json("GET", self._job(job_id, "artifacts")))

    def receipt_bytes(self, job_id: str) -> bytes:
        """GET /v1/jobs/{id}/receipt, as the exact bytes the server sent (to save unchanged)."""
        return self._send("GET", self._job(job_id, "receipt")).content

    def ledger_page(self, start: int = 0, limit: int = 1000) -> dict[str, Any]:
        """GET /v1/ledger/entries: `{"size", "entries": [{"index", "entry" (base64)}]}`."""
        return dict(self._json("GET", "/ledger/entries", params={"start": start, "limit": limit}))

    def ledger_entries(self, page: int = 1000) -> list[bytes]:
        """Every entry of the log, in order, as canonical bytes (fetched page by page)."""
        entries: list[bytes] = []
        while True:
            body = self.ledger_page(len(entries), page)
            rows = body.get("entries") or []
            for row in rows:
                if row.get("index") != len(entries):
                    raise IntegrityError(
                        f"the server sent ledger entry {row.get('index')} where entry "
                        f"{len(entries)} belongs; the log it serves is not in order"
                    )
                entries.append(base64.b64decode(row["entry"], validate=True))
            if not rows or len(entries) >= int(body.get("size", 0)):
                return entries

    def checkpoint(self) -> str:
        """GET /v1/ledger/checkpoint: the latest signed checkpoint note."""
        return self._send("GET", "/ledger/checkpoint").text

    def checkpoints(self) -> list[str]:
        """GET /v1/ledger/checkpoints: every checkpoint the log signed, oldest first."""
        return list(self._json("GET", "/ledger/checkpoints").get("checkpoints", []))

    def public_key(self) -> dict[str, Any]:
        """GET /v1/ledger/public-key: `{"origin", "public_key"}` (base64 raw 32 bytes)."""
        return dict(self._json("GET", "/ledger/public-key"))

    @staticmethod
    def _job(job_id: str, *rest: str) -> str:
        return "/".join(["/jobs", quote(job_id, safe=""), *rest])

    # -- downloads -------------------------------------------------------------------------

    def download_artifact(
        self,
        job_id: str,
        name: str,
        folder: Path,
        *,
        expected_sha256: str | None = None,
        observer: DownloadObserver | None = None,
        chunk_size: int | None = None,
    ) -> Downloaded:
        """Download artifact `name` of `job_id` to `folder/name`; return it once it matches.

        Contract: 1. bytes go to `folder/.<name>.c2d-part`, hashed as they are written (a part
        left by an earlier attempt is hashed and continued with a Range request); 2. a dropped
        connection resumes from the bytes on disk, up to RESUME_ATTEMPTS times; 3. the digest must
        equal the server's `X-C2D-SHA256` and `expected_sha256` (when given), else the part is
        deleted and IntegrityError raised; 4. only then fsync and rename to the final name.
        """
        observer = observer or _Silent()
        target = artifact_path(folder, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(f".{target.name}{PART_SUFFIX}")
        url = API + self._job(job_id, "artifacts", quote(name, safe="/"))
        expected = hex_digest(expected_sha256) if expected_sha256 else None
        try:
            digest, size = self._fetch_to(part, url, name, expected, observer, chunk_size)
        except IntegrityError:
            part.unlink(missing_ok=True)
            raise
        # Any other failure keeps the part (never a final name) so that a rerun resumes.
        if expected and digest != expected:
            part.unlink(missing_ok=True)
            raise IntegrityError(
                f"{name}: the downloaded bytes hash to sha256:{digest}, but the job's outcome "
                f"says sha256:{expected}; nothing was saved under {target}; fetch again, and tell "
                "the operator if it repeats"
            )
        os.replace(part, target)
        _fsync_dir(target.parent)
        observer.finish(name)
        return Downloaded(name, target, "sha256:" + digest, size)

    def _fetch_to(
        self,
        part: Path,
        url: str,
        name: str,
        expected: str | None,
        observer: DownloadObserver,
        chunk_size: int | None,
    ) -> tuple[str, int]:
        """Fill `part` with the artifact's bytes; return (hex digest, size), fsynced."""
        hasher = hashlib.sha256()
        offset = _hash_existing(part, hasher)
        started = False
        for attempt in range(RESUME_ATTEMPTS + 1):
            headers = {"Range": f"bytes={offset}-"} if offset else {}
            try:
                with self._http.stream("GET", url, headers=headers) as response:
                    if response.status_code == 416:
                        # The part on disk is longer than the artifact: start over.
                        response.read()
                        part.unlink(missing_ok=True)
                        hasher, offset = hashlib.sha256(), 0
                        continue
                    if response.is_error:
                        response.read()
                        raise self._error(response)
                    if offset and response.status_code != 206:
                        # The server ignored the Range header and sends everything again.
                        part.unlink(missing_ok=True)
                        hasher, offset = hashlib.sha256(), 0
                    total = _total_size(response, offset)
                    announced = hex_digest(response.headers.get("X-C2D-SHA256", ""))
                    if expected and announced and announced != expected:
                        raise IntegrityError(
                            f"{name}: the server announces sha256:{announced}, but the job's "
                            f"outcome says sha256:{expected}; nothing was saved"
                        )
                    if not started:
                        observer.start(name, total)
                        observer.advance(offset)
                        started = True
                    offset = _append(part, response.iter_bytes(chunk_size), hasher, observer)
                    if offset != total:
                        raise httpx.RemoteProtocolError(
                            f"the transfer ended at byte {offset} of {total}"
                        )
                    digest = hasher.hexdigest()
                    if announced and digest != announced:
                        raise IntegrityError(
                            f"{name}: the downloaded bytes hash to sha256:{digest}, but the "
                            f"server announced sha256:{announced}; nothing was saved"
                        )
                    return digest, offset
            except httpx.TransportError as exc:
                if isinstance(exc, httpx.ConnectError) and not started:
                    raise self._unavailable(exc) from exc
                if attempt == RESUME_ATTEMPTS:
                    raise ServiceUnavailable(
                        f"{name}: the download kept breaking off ({exc}); run the same fetch "
                        "again to resume from the bytes already on disk"
                    ) from exc
                # Re-read what reached the disk: that, not what was received, is the prefix.
                hasher = hashlib.sha256()
                offset = _hash_existing(part, hasher)
        raise ServiceUnavailable(f"{name}: the server refused every attempt to resume")


def _hash_existing(part: Path, hasher: Any) -> int:
    """Feed the bytes already in `part` to `hasher`; return how many there are."""
    if not part.exists():
        return 0
    size = 0
    with part.open("rb") as f:
        while block := f.read(CHUNK):
            hasher.update(block)
            size += len(block)
    return size


def _append(part: Path, chunks: Iterator[bytes], hasher: Any, observer: DownloadObserver) -> int:
    """Append `chunks` to `part`, hashing each; fsync; return the file's size."""
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        with os.fdopen(fd, "ab", closefd=False) as f:
            try:
                for chunk in chunks:
                    f.write(chunk)
                    hasher.update(chunk)
                    observer.advance(len(chunk))
            finally:
                f.flush()
                os.fsync(fd)
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


def _total_size(response: httpx.Response, offset: int) -> int:
    """The artifact's full size from Content-Range (206) or Content-Length (200)."""
    content_range = response.headers.get("Content-Range", "")
    if response.status_code == 206 and "/" in content_range:
        unit_range, _, total = content_range.partition("/")
        start = unit_range.removeprefix("bytes ").split("-")[0]
        if not start.isdigit() or int(start) != offset:
            raise IntegrityError(
                f"asked to resume at byte {offset}, but the server sent {content_range!r}"
            )
        return int(total)
    length = response.headers.get("Content-Length")
    if length is None or not length.isdigit():
        raise IntegrityError("the server sent an artifact without a Content-Length")
    return int(length)
