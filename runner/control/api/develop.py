"""Routes for developing against data you cannot see: a dataset's schema, a job's dry run.

- ``GET /v1/datasets/{name}/schema``: the schema document (``Service.dataset_schema``): the
  owner and admins get the whole profile, everyone else the view the dataset's policy allows
  (``hidden``, ``columns`` or ``stats``), from which ``c2d dataset mock`` makes mock data.
- ``GET /v1/jobs/{id}/dryrun``: the job's pre-approval dry run on mock data, or ``null`` while
  there is none; whoever sees the job, but a hidden schema's result only for the owner.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from runner.control.api.deps import Actor, State
from runner.control.api.errors import errors

router = APIRouter(prefix="/v1")


@router.get("/datasets/{name}/schema", responses=errors(401, 404, 422))
def schema(name: str, actor: Actor, state: State) -> dict[str, Any]:
    """What the caller may see of dataset ``name``'s files, columns and statistics."""
    return state.ctx.service.dataset_schema(actor, name)


@router.get("/jobs/{job_id}/dryrun", responses=errors(401, 404, 422))
def dryrun(job_id: str, actor: Actor, state: State) -> dict[str, Any] | None:
    """The job's dry run on mock data (``null`` until the data host has run it)."""
    return state.ctx.service.dryrun_for(actor, job_id)
