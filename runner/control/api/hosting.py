"""Routes of data hosts: how an admin adds one, how it enrolls, and the calls it makes.

``/v1/hosts`` is for people: an admin adds a host (its one-time enrollment token is in the
answer and nowhere else) and anyone signed in lists them. ``/v1/hosts/enroll`` takes the
enrollment token and the host's public key and answers the host's own credential.

``/v1/host/...`` is for data hosts only, each with its own credential (``c2dh_...``): a host
reads, claims, renews and finishes only the jobs of its own datasets (another host's job is
"not found"), posts only statements its enrolled key signed, and uploads only files the
outcome it signed names, outputs only once released. A user's token is refused here, and a
host's credential on people's routes (``runner.control.api.deps``).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from jobs.errors import InvalidRequest, LeaseLost, NotAllowed, TooLarge
from jobs.fields import GivenName, Whole
from jobs.host_records import Host
from jobs.models import Outcome
from jobs.schema_records import DryRun
from runner.artifacts import ArtifactStore
from runner.control.api.deps import Actor, State, api_state
from runner.control.api.errors import error_body, errors
from runner.control.api.views import host_view
from runner.wire import SHA256_HEADER

log = logging.getLogger(__name__)

people = APIRouter(prefix="/v1/hosts")
hosts = APIRouter(prefix="/v1/host")

# Strict: a request holds what the document says (`true`, not `1`; `5`, not `"5"`), as
# schemathesis checks; lax coercion would accept bodies the document calls invalid.
_REQUEST = ConfigDict(frozen=True, extra="forbid", strict=True)
_bearer = HTTPBearer(auto_error=False, description="A data host's credential (`c2dh_...`).")


def current_host(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Host:
    """The data host holding the bearer credential; 401 for none, a user's or a wrong one."""
    token = credentials.credentials if credentials is not None else None
    return api_state(request).ctx.service.authenticate_host(token)


Me = Annotated[Host, Depends(current_host)]

UploadKind = Literal["output", "log", "review"]
"""What a host uploads: an output once released, a log, or an output for the owner's review."""


class NewHost(BaseModel):
    """``POST /v1/hosts``."""

    model_config = _REQUEST
    name: GivenName
    renew: bool = False


class Enrollment(BaseModel):
    """``POST /v1/hosts/enroll``: the one-time token and the host's Ed25519 public key."""

    model_config = _REQUEST
    token: str = Field(max_length=200)
    # The service's own check says what is wrong; the schema says what it accepts.
    public_key: str = Field(max_length=44, json_schema_extra={"pattern": "^[A-Za-z0-9+/]{43}=$"})


class Hello(BaseModel):
    """``POST /v1/host/hello``; ``engine`` says whether the host's Docker engine answered a
    ping just before (an agent that does not say leaves it unknown, which is not ready)."""

    model_config = _REQUEST
    environments: dict[str, dict[str, Any]] = Field(default_factory=dict)
    agent: str = Field(default="", max_length=200)
    engine: bool | None = None


class LeaseRequest(BaseModel):
    model_config = _REQUEST
    worker: str = Field(max_length=200)
    lease_s: float


class Renewal(LeaseRequest):
    fence: Whole


class Finish(BaseModel):
    model_config = _REQUEST
    fence: Whole
    outcome: Outcome
    signature: str = Field(max_length=200)


@people.post("", status_code=201, responses=errors(401, 403, 404, 409, 422))
def add_host(body: NewHost, actor: Actor, state: State) -> dict[str, Any]:
    """Add a data host (admins only); its one-time enrollment token is in this answer only."""
    host, token = state.ctx.service.add_host(actor, body.name, renew=body.renew)
    return {**host_view(host, state.ctx.service.running_on(host.name)), "enroll_token": token}


@people.get("", responses=errors(401))
def list_hosts(actor: Actor, state: State) -> list[dict[str, Any]]:
    """Every data host: its key's fingerprint, when it last spoke, its running jobs."""
    del actor  # any signed-in user may see which hosts exist
    service = state.ctx.service
    return [host_view(h, service.running_on(h.name)) for h in service.list_hosts()]


@people.post("/enroll", responses=errors(401, 422))
def enroll(body: Enrollment, state: State) -> dict[str, Any]:
    """Enroll a host with its one-time token (no other credential): the host's credential,
    name, the installation's origin and its id (the prefix of its queues' Redis keys)."""
    host, credential = state.ctx.service.enroll_host(body.token, body.public_key)
    settings = state.ctx.settings
    return {
        "name": host.name,
        "token": credential,
        "origin": settings.origin,
        "installation": settings.installation,
    }


def blob_response(store: ArtifactStore, digest: str) -> StreamingResponse:
    """Artifact ``digest`` streamed to a data host, its digest announced in ``X-C2D-SHA256``
    (the host keeps the bytes only if they hash to it)."""
    handle = store.open(digest)

    def chunks() -> Any:
        with handle:
            while chunk := handle.read(1 << 20):
                yield chunk

    headers = {SHA256_HEADER: digest.removeprefix("sha256:")}
    return StreamingResponse(chunks(), media_type="application/octet-stream", headers=headers)


def _worker(me: Host, worker: str) -> str:
    """A host's lease holders are named after it: ``NAME@machine:pid``."""
    if not worker.startswith(f"{me.name}@"):
        raise InvalidRequest(f"a worker of data host {me.name} is named {me.name}@...")
    return worker


def _lease_lost(exc: LeaseLost) -> JSONResponse:
    body = error_body("conflict", str(exc))
    body["error"]["lease_lost"] = {"cancelled": exc.cancelled}
    return JSONResponse(body, status_code=409)


@hosts.post("/hello", responses=errors(401, 422))
def hello(body: Hello, me: Me, state: State) -> dict[str, Any]:
    """The host's periodic hello: it is alive, which environments it offers, whether its
    engine answers."""
    seen = state.ctx.service.host_seen(me, body.environments, body.agent, body.engine)
    return {"name": seen.name, "last_seen": seen.last_seen}


@hosts.get("/jobs/{job_id}", responses=errors(401, 404, 422))
def job(job_id: str, me: Me, state: State) -> dict[str, Any]:
    """One of the host's jobs, whole (spec, approval, outcome): the host runs it."""
    return state.ctx.service.host_job(me, job_id).model_dump(mode="json")


@hosts.get("/jobs/{job_id}/image", responses=errors(401, 404, 422))
def job_image(job_id: str, me: Me, state: State) -> dict[str, Any] | None:
    """The job's own image record (built or loaded on this host), or null."""
    state.ctx.service.host_job(me, job_id)
    record = state.ctx.service.job_image(job_id)
    return None if record is None else record.model_dump(mode="json")


@hosts.get("/images-in-use", responses=errors(401))
def images_in_use(me: Me, state: State) -> list[str]:
    """Image IDs this host's pending, approved or running jobs are bound to: the host's
    clean-up never removes them."""
    return sorted(state.ctx.service.images_in_use(me.name))


@hosts.get("/jobs/{job_id}/bundle", responses=errors(401, 404, 422))
def bundle(job_id: str, me: Me, state: State) -> StreamingResponse:
    """The job's code bundle as submitted; the host hashes it against the approval."""
    job = state.ctx.service.host_job(me, job_id)
    record = state.ctx.service.job_image(job_id)
    digest = job.code_digest if record is None else record.bundle_digest
    return blob_response(state.ctx.artifacts, digest)


@hosts.get("/datasets/{name}", responses=errors(401, 404, 422))
def dataset(name: str, me: Me, state: State) -> dict[str, Any]:
    """One of the host's datasets as the control plane recorded it."""
    return state.ctx.service.host_dataset(me, name).model_dump(mode="json")


@hosts.post("/jobs/{job_id}/claim", response_model=None, responses=errors(401, 404, 409, 422))
def claim(job_id: str, body: LeaseRequest, me: Me, state: State) -> dict[str, Any]:
    """Claim an approved job of this host (or adopt one whose lease ran out)."""
    state.ctx.service.host_job(me, job_id)
    taken = state.ctx.service.claim(job_id, _worker(me, body.worker), body.lease_s)
    return {"job": taken.job.model_dump(mode="json"), "fence": taken.fence}


@hosts.post("/jobs/{job_id}/heartbeat", response_model=None, responses=errors(401, 404, 409, 422))
def heartbeat(job_id: str, body: Renewal, me: Me, state: State) -> dict[str, Any] | JSONResponse:
    """Renew the lease; 409 with ``lease_lost`` when the host must let the job go."""
    state.ctx.service.host_job(me, job_id)
    try:
        renewed = state.ctx.service.heartbeat(
            job_id, _worker(me, body.worker), body.fence, body.lease_s
        )
    except LeaseLost as exc:
        return _lease_lost(exc)
    return renewed.model_dump(mode="json")


@hosts.post("/jobs/{job_id}/finish", response_model=None, responses=errors(401, 403, 404, 409, 422))
def finish(job_id: str, body: Finish, me: Me, state: State) -> dict[str, Any] | JSONResponse:
    """Record the run's outcome as the host signed it; a signature that is not the host's
    enrolled key's is refused (and logged). A job released by its dataset's policy is
    answered ``released``: the host uploads its outputs at once."""
    service = state.ctx.service
    service.host_job(me, job_id)
    try:
        done = service.finish(job_id, body.fence, body.outcome, host=me, signature=body.signature)
    except LeaseLost as exc:
        return _lease_lost(exc)
    except NotAllowed:
        log.warning("job %s: refused a finish from host %s with a bad signature", job_id, me.name)
        raise
    return done.model_dump(mode="json")


@hosts.post("/jobs/{job_id}/dryrun/lease", responses=errors(401, 404, 409, 422))
def lease_dryrun(job_id: str, body: LeaseRequest, me: Me, state: State) -> dict[str, bool]:
    """Take or renew the lease on the job's dry run."""
    state.ctx.service.host_job(me, job_id)
    worker = _worker(me, body.worker)
    return {"leased": state.ctx.service.lease_dryrun(job_id, worker, body.lease_s)}


@hosts.get("/jobs/{job_id}/dryrun", responses=errors(401, 404, 422))
def dryrun_of(job_id: str, me: Me, state: State) -> dict[str, Any] | None:
    """The job's recorded dry run, or null."""
    state.ctx.service.host_job(me, job_id)
    found = state.ctx.service.dryrun_of(job_id)
    return None if found is None else found.model_dump(mode="json")


@hosts.put("/jobs/{job_id}/dryrun", status_code=204, responses=errors(401, 404, 409, 422))
def record_dryrun(job_id: str, body: DryRun, me: Me, state: State) -> None:
    """Record the job's dry run on mock data."""
    state.ctx.service.host_job(me, job_id)  # another host's job is not found, first
    if body.job_id != job_id:
        raise InvalidRequest(f"this dry run is of job {body.job_id}, not {job_id}")
    state.ctx.service.record_dryrun(body)


@hosts.put(
    "/jobs/{job_id}/{kind}s/{digest}",
    status_code=204,
    responses=errors(401, 403, 404, 409, 413, 422),
)
async def upload(job_id: str, kind: UploadKind, digest: str, request: Request, me: Me) -> None:
    """A file of the job the outcome the host signed names, hashed while it is kept: an output
    once released, the log (for those who may read it), or an output the owner asked to
    review (kept apart, for the owner, for a while). Refused unless it is exactly that."""
    state = api_state(request)
    cap = state.ctx.service.upload_allowed(me, job_id, kind, digest)
    store = state.ctx.review if kind == "review" else state.ctx.artifacts
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise TooLarge(f"the {kind} of job {job_id} is {cap} bytes at most")
    await store.receive(request.stream(), cap, digest)
