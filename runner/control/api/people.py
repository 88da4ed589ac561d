"""Routes about who and what: the caller, users and their tokens, environments and datasets."""

from __future__ import annotations

import logging
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from jobs import access
from jobs.errors import NotAllowed
from jobs.fields import GivenName, Note, Whole
from jobs.models import DEFAULT_MAX_METRICS, MAX_METRICS, Caps, DatasetPolicy
from jobs.output_checks import OutputChecks
from jobs.schema_records import ProfileRecord
from jobs.service_core import build
from jobs.signed_actions import SignedEnvelope
from runner.control.api.deps import Actor, State
from runner.control.api.errors import errors
from runner.control.api.views import account_view, dataset_view, user_view

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1")

# Strict: a request holds what the document says (`true`, not `1`; `5`, not `"5"`), as
# schemathesis checks; lax coercion would accept bodies the document calls invalid.
_REQUEST = ConfigDict(frozen=True, extra="forbid", strict=True)


class ChecksBody(OutputChecks):
    """A dataset's output checks as a request carries them (``PUT /v1/datasets/{name}/checks``,
    ``POST /v1/datasets``): as strict as every request body."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class NewUser(BaseModel):
    """``POST /v1/users``."""

    model_config = _REQUEST
    name: GivenName
    role: Literal["admin", "owner", "researcher"]


class NewDataset(BaseModel):
    """``POST /v1/datasets``: a dataset its data host ``host`` hashed, profiled and signed
    (``statement``, ``signature``, ``profile``; see ``runner.host.datasets``), with the owner's
    policy, and optionally the publisher's ``signed`` ``c2d/publish`` statement
    (``jobs.signed_actions``). No path: the folder's path never leaves the data host."""

    model_config = _REQUEST
    name: GivenName
    host: GivenName
    statement: dict[str, Any]
    signature: str = Field(max_length=200)
    profile: ProfileRecord
    review_outputs: bool = True
    logs_visible: Literal["owner", "researcher"] = "owner"
    caps: dict[str, Any] | None = None
    owner: GivenName | None = None
    schema_: Literal["hidden", "columns", "stats"] = Field(default="columns", alias="schema")
    public_values: dict[str, list[str]] | None = None
    max_metrics: Whole = Field(default=DEFAULT_MAX_METRICS, ge=1, le=MAX_METRICS)
    checks: ChecksBody = Field(default_factory=ChecksBody)
    signed: SignedEnvelope | None = None


@router.get("/me", responses=errors(401))
def me(actor: Actor) -> dict[str, Any]:
    """The caller's name and role."""
    return user_view(actor)


@router.post("/users", status_code=201, responses=errors(401, 403, 409, 422))
def add_user(body: NewUser, actor: Actor, state: State) -> dict[str, Any]:
    """Create a user (admins only); the token is in this answer and nowhere else."""
    if not access.is_admin(actor):
        raise NotAllowed("only admins add users; ask one to run `c2d user add`")
    user, token = state.ctx.service.add_user(body.name, body.role, actor=actor.name)
    return {**user_view(user), "token": token}


@router.get("/environments", responses=errors(401))
def environments(actor: Actor, state: State) -> list[dict[str, Any]]:
    """The job environments each data host offers (its last hello): image IDs and pins."""
    del actor  # any signed-in user may see them
    return [
        {"name": name, "host": host.name, "image_id": env.image_id, "pins": env.pins}
        for host in state.ctx.service.list_hosts()
        for name, env in sorted(host.environments.items())
    ]


@router.post("/datasets", status_code=201, responses=errors(401, 403, 404, 409, 422))
def add_dataset(body: NewDataset, actor: Actor, state: State) -> dict[str, Any]:
    """Record (or replace) a dataset as its data host attested it, with the owner's policy
    (owners and admins); the service checks the host's signature."""
    if not access.may_register(actor):
        raise NotAllowed("only data owners and admins register datasets")
    caps = build(Caps, **(body.caps or {}))
    policy = build(
        DatasetPolicy,
        owner=body.owner or actor.name,
        review_outputs=body.review_outputs,
        logs_visible=body.logs_visible,
        caps=caps,
        host=body.host,
        schema=body.schema_,
        public_values=body.public_values or {},
        max_metrics=body.max_metrics,
        checks=OutputChecks.model_validate(body.checks.model_dump()),
    )
    dataset = state.ctx.service.register_dataset(
        actor, body.name, policy, body.statement, body.signature, body.profile, body.signed
    )
    return dataset_view(dataset)


@router.get("/datasets", responses=errors(401))
def list_datasets(actor: Actor, state: State) -> list[dict[str, Any]]:
    """Every registered dataset."""
    return [dataset_view(d) for d in state.ctx.service.list_datasets(actor)]


@router.put("/datasets/{name}/checks", responses=errors(401, 403, 404, 422))
def set_checks(name: str, body: ChecksBody, actor: Actor, state: State) -> dict[str, Any]:
    """Change a dataset's automatic output checks (its owner or an admin); they apply to runs
    that finish from now on."""
    checks = OutputChecks.model_validate(body.model_dump())
    return dataset_view(state.ctx.service.set_checks(actor, name, checks))


@router.get("/datasets/{name}", responses=errors(401, 404, 422))
def get_dataset(name: str, actor: Actor, state: State) -> dict[str, Any]:
    """One dataset."""
    return dataset_view(state.ctx.service.get_dataset(actor, name))


class Revocation(BaseModel):
    """``POST /v1/users/{name}/revoke``: why (optional; it goes into the ledger)."""

    model_config = _REQUEST
    reason: Note = ""


@router.get("/users", responses=errors(401, 403))
def list_users(actor: Actor, state: State) -> list[dict[str, Any]]:
    """Every user, revoked ones too, with role, when added and key fingerprints (admins)."""
    return [account_view(a) for a in state.ctx.service.list_accounts(actor)]


@router.post("/users/{name}/revoke", responses=errors(401, 403, 404, 409, 422))
def revoke_user(
    name: str, actor: Actor, state: State, body: Revocation | None = None
) -> dict[str, Any]:
    """Revoke a user for good (admins): their token fails from the next request on."""
    reason = body.reason if body is not None else ""
    account = state.ctx.service.revoke_user(actor, name, reason)
    log.info("user %s revoked by %s", account.name, actor.name)
    return account_view(account)


@router.post("/me/token", responses=errors(401))
def rotate_own_token(actor: Actor, state: State) -> dict[str, Any]:
    """A new token for the caller; the one this request came with stops working now. The
    new token is in this answer and nowhere else."""
    account, token = state.ctx.service.rotate_token(actor)
    return {**user_view(account.user), "token": token}


@router.post("/users/{name}/token", responses=errors(401, 403, 404, 409, 422))
def rotate_token(name: str, actor: Actor, state: State) -> dict[str, Any]:
    """A new token for user ``name`` (the caller's own, or anyone's for admins); the old one
    stops working now. The new token is in this answer and nowhere else."""
    account, token = state.ctx.service.rotate_token(actor, name)
    log.info("token of %s rotated by %s", account.name, actor.name)
    return {**user_view(account.user), "token": token}
