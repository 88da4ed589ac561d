"""The c2d HTTP client: one method per route of the v1 API (see the API contract).

Every error comes back as an exception with a `kind`, so callers report it the same way as a
local error (see `runner.client.http`): an error response becomes `ApiError(kind, message,
status)` with the server's kind and message; a server that does not answer becomes
`ServiceUnavailable` naming the URL and how to start one. Artifact downloads are verified before
they get their final name and resume after a dropped connection (see `runner.client.download`).

Given a `Signer` (`runner.client.signing`), submit, approve, reject, trust, release and a
dataset's registration (when given the policy it publishes) carry the person's signature over
the statement of that action (`jobs.signed_actions`); without one, or without a key file, they
are sent unsigned.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

import httpx

from runner.client.download import Downloaded, DownloadObserver, Silent, download
from runner.client.http import api_error, parse_sse, unavailable
from runner.client.upload import ProgressReader, check_archive
from runner.errors import ApiError, IntegrityError
from runner.wire import (
    ARCHIVE_HEADER,
    LOG_LIVE_HEADER,
    LOG_NEXT_HEADER,
    LOG_TRUNCATED_HEADER,
)

if TYPE_CHECKING:
    from jobs.signed_actions import ActionStatement
    from runner.client.signing import Identity, Signer

API = "/v1"
EVENTS_READ_S = 45.0
"""Longest silence on an event stream before it counts as broken (the server pings every 15 s)."""


@dataclass(frozen=True)
class LogPiece:
    """A piece of a job's log: the text, the byte to ask from next, whether it is the live
    log of a job still going (else the kept log, whole), and whether that was cut at its cap."""

    text: str
    next: int
    live: bool
    truncated: bool


class Client:
    """A connection to one c2d API. Use as a context manager, or call `close()`."""

    def __init__(
        self,
        url: str,
        token: str | None,
        timeout: float = 30.0,
        *,
        transport: httpx.BaseTransport | None = None,
        signer: Signer | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self._signer = signer
        self._identity: Identity | None = None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        verify: ssl.SSLContext | bool = True
        if self.url.startswith("http://"):
            # A plain-http API needs no TLS, and loading the CA bundle took a third of
            # `c2d status`; redirects are not followed, and a context that trusts no one makes
            # any TLS connection fail closed, never open.
            verify = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport, verify=verify
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, API + path, **kwargs)
        except httpx.TransportError as exc:
            raise unavailable(self.url, exc) from exc
        if response.is_error:
            raise api_error(response)
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

    def _who(self) -> Identity:
        if self._identity is None:
            self._identity = (self.me()["name"], self.public_key()["origin"], self.user_keys())
        return self._identity

    def _signed(self, build: Callable[[str, str], ActionStatement]) -> dict[str, Any]:
        """``{"signed": envelope}`` for a request body, or empty when the action goes unsigned."""
        if self._signer is None:
            return {}
        envelope = self._signer.envelope(self._who, build, url=self.url, token=self._token)
        return {} if envelope is None else {"signed": envelope}

    def _act(self, signed: dict[str, Any], method: str, path: str, **kwargs: Any) -> Any:
        """Send an action that ``signed`` (from ``_signed``) may sign. A 403 naming the key
        that signed it (unknown or revoked, maybe since the signer last asked) becomes the
        signer's ``SigningKeyRefused``; the action is not sent again unsigned."""
        try:
            return self._json(method, path, **kwargs)
        except ApiError as exc:
            envelope = signed.get("signed")
            if (
                self._signer is None
                or envelope is None
                or exc.status != 403
                or str(envelope["key"]) not in exc.message
            ):
                raise
            raise self._signer.refused(envelope, self.url, self._token, exc.message) from exc

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

    def users(self) -> list[dict[str, Any]]:
        """GET /v1/users (admin): every user with role, `created`, `revoked`, `revoked_by` and
        `key_fingerprints`."""
        return list(self._json("GET", "/users"))

    def revoke_user(self, name: str, reason: str = "") -> dict[str, Any]:
        """POST /v1/users/NAME/revoke (admin): the user as listed, now revoked."""
        path = f"/users/{quote(name, safe='')}/revoke"
        return dict(self._json("POST", path, json={"reason": reason}))

    def rotate_token(self, name: str | None = None) -> dict[str, Any]:
        """POST /v1/me/token, or /v1/users/NAME/token (admin, or your own name): `{"name",
        "role", "token"}`; the old token stops working now, the new one is shown only once."""
        path = f"/users/{quote(name, safe='')}/token" if name else "/me/token"
        return dict(self._json("POST", path))

    def user_keys(self, name: str | None = None) -> list[dict[str, Any]]:
        """GET /v1/me/keys, or /v1/users/NAME/keys (yours, or anyone's for admins): every key,
        revoked ones too, oldest first."""
        path = f"/users/{quote(name, safe='')}/keys" if name else "/me/keys"
        return list(self._json("GET", path))

    def register_key(self, public_key: str, signature: str) -> dict[str, Any]:
        """POST /v1/me/keys: bind a public key, signed over its `c2d/user-key` statement."""
        body = {"public_key": public_key, "signature": signature}
        return dict(self._json("POST", "/me/keys", json=body))

    def rotate_key(
        self, public_key: str, signature: str, replaces: str, replaces_signature: str
    ) -> dict[str, Any]:
        """POST /v1/me/keys/rotate: the new key, the old one revoked in the same step."""
        body = {
            "public_key": public_key,
            "signature": signature,
            "replaces": replaces,
            "replaces_signature": replaces_signature,
        }
        return dict(self._json("POST", "/me/keys/rotate", json=body))

    def revoke_key(self, fingerprint: str, reason: str = "") -> dict[str, Any]:
        """POST /v1/keys/FINGERPRINT/revoke (your key, or anyone's for admins)."""
        path = f"/keys/{quote(fingerprint, safe='')}/revoke"
        return dict(self._json("POST", path, json={"reason": reason}))

    def environments(self) -> list[dict[str, Any]]:
        """GET /v1/environments: `[{"name", "host", "image_id", "pins"}]`."""
        return list(self._json("GET", "/environments"))

    def add_dataset(
        self,
        name: str,
        host: str,
        attestation: dict[str, Any],
        *,
        owner: str | None = None,
        review_outputs: bool = True,
        logs_visible: str = "owner",
        caps: dict[str, Any] | None = None,
        schema: str | None = None,
        public_values: dict[str, list[str]] | None = None,
        max_metrics: int | None = None,
        checks: dict[str, Any] | None = None,
        policy: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """POST /v1/datasets (owner/admin): record a dataset its data host ``host`` attested.

        ``attestation`` is what the host made of the folder (``{"statement", "signature",
        "profile"}``, ``runner.host.datasets.attest_dataset``); the folder's path is not in it.
        `schema` is how much researchers see (hidden, columns, stats); `public_values` the
        columns whose values the owner publishes (`{file or "*": [column, ...]}`);
        `max_metrics` the most keys a job's metrics.json may hold (default 100). `policy`, the
        public dump of the `DatasetPolicy` these fields make, is what a signed registration
        names (``c2d/publish``): given a `Signer` and a key, the registration is signed over
        it, and the server refuses (422 naming `policy`) a policy that is not the one it
        builds from the fields."""
        body: dict[str, Any] = {
            "name": name,
            "host": host,
            **attestation,
            "review_outputs": review_outputs,
            "logs_visible": logs_visible,
        }
        if owner:
            body["owner"] = owner
        if caps:
            body["caps"] = caps
        if schema:
            body["schema"] = schema
        if public_values:
            body["public_values"] = public_values
        if max_metrics is not None:
            body["max_metrics"] = max_metrics
        if checks is not None:
            body["checks"] = checks
        if policy is not None:
            body |= self._signed(
                lambda origin, user: _publish(origin, user, name, attestation, policy)
            )
        return dict(self._json("POST", "/datasets", json=body))

    def hosts(self) -> list[dict[str, Any]]:
        """GET /v1/hosts: every data host, its key's fingerprint, last hello, running jobs."""
        return list(self._json("GET", "/hosts"))

    def add_host(self, name: str, *, renew: bool = False) -> dict[str, Any]:
        """POST /v1/hosts (admin): a data host and its one-time `enroll_token`."""
        return dict(self._json("POST", "/hosts", json={"name": name, "renew": renew}))

    def datasets(self) -> list[dict[str, Any]]:
        """GET /v1/datasets."""
        return list(self._json("GET", "/datasets"))

    def dataset(self, name: str) -> dict[str, Any]:
        """GET /v1/datasets/{name}."""
        return dict(self._json("GET", f"/datasets/{quote(name, safe='')}"))

    def set_checks(self, name: str, checks: dict[str, Any]) -> dict[str, Any]:
        """PUT /v1/datasets/{name}/checks (its owner or an admin): the dataset's automatic
        output checks (`{"file_types", "max_file_bytes", "metric_names", "min_cell",
        "max_rows"}`, see `jobs.output_checks.OutputChecks`); answers the dataset."""
        path = f"/datasets/{quote(name, safe='')}/checks"
        return dict(self._json("PUT", path, json=checks))

    def schema(self, name: str) -> dict[str, Any]:
        """GET /v1/datasets/{name}/schema: what the caller may see of its files and columns."""
        return dict(self._json("GET", f"/datasets/{quote(name, safe='')}/schema"))

    def dryrun(self, job_id: str) -> dict[str, Any] | None:
        """GET /v1/jobs/{id}/dryrun: the job's run on mock data before review, or None yet."""
        found = self._json("GET", self._job(job_id, "dryrun"))
        return dict(found) if found is not None else None

    def submit(
        self,
        spec: dict[str, Any],
        bundle: bytes,
        image_archive: Path | None = None,
        *,
        max_archive_bytes: int = 4 * 2**30,
        observer: DownloadObserver | None = None,
    ) -> dict[str, Any]:
        """POST /v1/jobs: the spec as JSON and the deterministic code tar; returns the Job.

        ``image_archive`` (a ``docker save`` file, at most ``max_archive_bytes``) is streamed
        from disk as the ``image_archive`` part, ``observer`` seeing its progress. The server
        builds or loads the job's own image before it answers, so the wait for the answer is
        not capped.
        """
        files: dict[str, Any] = {"bundle": ("bundle.tar", bundle, "application/x-tar")}
        headers: dict[str, str] = {}
        form = {"spec": json.dumps(spec)}
        signed = self._signed(lambda origin, user: _submit(origin, user, spec, bundle))
        if signed:
            form["signed"] = json.dumps(signed["signed"])
        watch = observer or Silent()
        with contextlib.ExitStack() as stack:
            if image_archive is not None:
                size = check_archive(image_archive, max_archive_bytes)
                handle = stack.enter_context(image_archive.open("rb"))
                reader = ProgressReader(handle, watch)
                files["image_archive"] = ("image.tar", reader, "application/x-tar")
                headers[ARCHIVE_HEADER] = str(size)  # the server allows this much more
                watch.start(image_archive.name, size)
            job = self._act(
                signed,
                "POST",
                "/jobs",
                data=form,
                files=files,
                headers=headers,
                timeout=httpx.Timeout(self._http.timeout.connect, read=None),
            )
            if image_archive is not None:
                watch.finish(image_archive.name)
        return dict(job)

    def jobs(
        self, state: str | None = None, *, dataset: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """GET /v1/jobs[?state=&dataset=&limit=]: the jobs this user may see, oldest first
        (``limit``: the newest that many)."""
        given = {"state": state, "dataset": dataset, "limit": limit}
        params = {k: v for k, v in given.items() if v is not None}
        return list(self._json("GET", "/jobs", params=params or None))

    def job(self, job_id: str) -> dict[str, Any]:
        """GET /v1/jobs/{id}."""
        return dict(self._json("GET", self._job(job_id)))

    def review(self, job_id: str) -> dict[str, Any]:
        """GET /v1/jobs/{id}/review: `{"job", "files", "previous", "diff"}` (owner/admin)."""
        return dict(self._json("GET", self._job(job_id, "review")))

    def own_image(self, job_id: str) -> dict[str, Any]:
        """GET /v1/jobs/{id}/image: the job's own image, Dockerfile and build log."""
        return dict(self._json("GET", self._job(job_id, "image")))

    def bundle(self, job_id: str) -> bytes:
        """GET /v1/jobs/{id}/bundle: the code tar as submitted."""
        return self._send("GET", self._job(job_id, "bundle")).content

    def approve(self, job_id: str, note: str | None = None) -> dict[str, Any]:
        """POST /v1/jobs/{id}/approve: binds the exact digests; returns the Job. Signed, the
        statement names the digests of the job as read here (what `c2d review` showed)."""
        job = self.job(job_id) if self._signer is not None else {}
        body: dict[str, Any] = {"note": note} if note else {}
        body |= self._signed(lambda origin, user: _decision(origin, user, job, "approve", note))
        return dict(self._act(body, "POST", self._job(job_id, "approve"), json=body))

    def reject(self, job_id: str, reason: str) -> dict[str, Any]:
        """POST /v1/jobs/{id}/reject."""
        job = self.job(job_id) if self._signer is not None else {}
        body: dict[str, Any] = {"reason": reason}
        body |= self._signed(lambda origin, user: _decision(origin, user, job, "reject", reason))
        return dict(self._act(body, "POST", self._job(job_id, "reject"), json=body))

    def cancel(self, job_id: str, reason: str | None = None) -> dict[str, Any]:
        """POST /v1/jobs/{id}/cancel."""
        body = {"reason": reason} if reason else {}
        return dict(self._json("POST", self._job(job_id, "cancel"), json=body))

    def release(self, job_id: str, *, despite_checks: bool = False) -> dict[str, Any]:
        """POST /v1/jobs/{id}/release: succeeded -> released; `despite_checks` releases a job
        whose automatic output checks failed (refused with 409 otherwise)."""
        body: dict[str, Any] = {"despite_checks": True} if despite_checks else {}
        body |= self._signed(lambda origin, user: _release(origin, user, self.job(job_id)))
        return dict(self._act(body, "POST", self._job(job_id, "release"), json=body))

    def refuse(self, job_id: str, reason: str) -> dict[str, Any]:
        """POST /v1/jobs/{id}/refuse: succeeded -> cancelled; the outputs never leave."""
        return dict(self._json("POST", self._job(job_id, "refuse"), json={"reason": reason}))

    def trust(self, job_id: str, *, any_params: bool = False) -> dict[str, Any]:
        """POST /v1/jobs/{id}/trust: the job's code, for its researcher, with its params (or
        any): `{"dataset", "code_digest", "researcher", "params_digest" (null: any),
        "any_params", "trusted_by", "job_id"}`."""
        body: dict[str, Any] = {"any_params": True} if any_params else {}
        body |= self._signed(
            lambda origin, user: _trust(origin, user, self.job(job_id), any_params)
        )
        return dict(self._act(body, "POST", self._job(job_id, "trust"), json=body))

    def logs(self, job_id: str) -> tuple[str, bool]:
        """GET /v1/jobs/{id}/logs: the log text and whether the server truncated it (for a
        job that has not ended, its live log so far)."""
        response = self._send("GET", self._job(job_id, "logs"))
        return response.text, response.headers.get(LOG_TRUNCATED_HEADER, "0") == "1"

    def log_piece(self, job_id: str, offset: int = 0) -> LogPiece:
        """GET /v1/jobs/{id}/logs?offset=: the log from byte ``offset`` (live while the job
        runs: ``LogPiece.live``, and ``next`` the offset to ask from next)."""
        response = self._send("GET", self._job(job_id, "logs"), params={"offset": offset})
        live = response.headers.get(LOG_LIVE_HEADER) == "1"
        text = response.text
        nxt = int(response.headers.get(LOG_NEXT_HEADER, offset + len(response.content)))
        return LogPiece(text, nxt, live, response.headers.get(LOG_TRUNCATED_HEADER) == "1")

    def events(
        self, job_id: str, *, logs: bool = False, offset: int = 0
    ) -> Iterator[tuple[str, Any]]:
        """GET /v1/jobs/{id}/events: the job's server-sent events as ``(name, data)``, until
        the server ends the stream (after ``end``). A broken or silent connection raises
        ``ServiceUnavailable`` (the server pings every 15 s, so silence means it is gone)."""
        params = {"logs": "true" if logs else "false", "offset": offset}
        timeout = httpx.Timeout(self._http.timeout.connect, read=EVENTS_READ_S)
        path = API + self._job(job_id, "events")
        try:
            with self._http.stream("GET", path, params=params, timeout=timeout) as response:
                if response.is_error:
                    response.read()
                    raise api_error(response)
                for name, data in parse_sse(response.iter_lines()):
                    yield name, json.loads(data)
        except httpx.TransportError as exc:
            raise unavailable(self.url, exc) from exc

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

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        """GET /v1/ledger/consistency: the RFC 9162 proof that the log at ``second`` entries
        extends the log at ``first``, as raw hashes (checked by the caller, not here)."""
        body = self._json("GET", "/ledger/consistency", params={"first": first, "second": second})
        try:
            return [base64.b64decode(node, validate=True) for node in body["proof"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise ApiError(
                "failed",
                f"the consistency proof from {first} to {second} the server sent is not a list "
                "of base64 hashes",
                200,
            ) from exc

    def public_key(self) -> dict[str, Any]:
        """GET /v1/ledger/public-key: `{"origin", "public_key"}` (base64 raw 32 bytes)."""
        return dict(self._json("GET", "/ledger/public-key"))

    @staticmethod
    def _job(job_id: str, *rest: str) -> str:
        return "/".join(["/jobs", quote(job_id, safe=""), *rest])

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
        """GET /v1/jobs/{id}/artifacts/{name} into `folder/name`, verified (see `download`)."""
        url = API + self._job(job_id, "artifacts", quote(name, safe="/"))
        return download(
            self._http,
            url,
            name,
            folder,
            expected_sha256=expected_sha256,
            observer=observer,
            chunk_size=chunk_size,
        )


# The statements are built here only when there is a key, so `jobs` loads on those paths alone.


def _submit(origin: str, user: str, spec: dict[str, Any], bundle: bytes) -> ActionStatement:
    """The ``c2d/submit`` statement for this spec and bundle, with a fresh nonce; the server
    reads the same spec and hashes the same bytes."""
    import secrets

    from jobs.digests import canonical_digest
    from jobs.signed_actions import submit_statement
    from jobs.spec import JobSpec

    parsed = JobSpec.from_data(spec, source="the job spec")
    return submit_statement(
        origin,
        user,
        secrets.token_hex(16),
        dataset=parsed.dataset or "",
        bundle="sha256:" + hashlib.sha256(bundle).hexdigest(),
        image=parsed.environment,
        params=canonical_digest(parsed.params),
    )


def _decision(
    origin: str,
    user: str,
    job: dict[str, Any],
    decision: Literal["approve", "reject"],
    note: str | None,
) -> ActionStatement:
    from jobs.signed_actions import decision_statement

    return decision_statement(origin, user, job, decision, note or "")


def _trust(origin: str, user: str, job: dict[str, Any], any_params: bool) -> ActionStatement:
    from jobs.signed_actions import trust_statement

    return trust_statement(origin, user, job, any_params=any_params)


def _publish(
    origin: str,
    user: str,
    name: str,
    attestation: dict[str, Any],
    policy: dict[str, Any],
) -> ActionStatement:
    """The ``c2d/publish`` statement over the host's statement and the policy."""
    from jobs.signed_actions import publish_statement

    return publish_statement(origin, user, name, attestation["statement"], policy)


def _release(origin: str, user: str, job: dict[str, Any]) -> ActionStatement:
    """The ``c2d/release`` statement over the held outputs as the job's outcome lists them."""
    from jobs.signed_actions import release_statement

    outcome = job.get("outcome") or {}
    return release_statement(origin, user, job["id"], outcome.get("outputs") or [])
