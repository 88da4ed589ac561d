"""A submitted job's own image, made on the data host that will run it.

The API holds no Docker engine. When a submission brings its own image (``image: {build:
PATH}`` in job.yaml, or an image archive), the API keeps the bundle and the archive in its
artifact store, opens a *preparation* and asks the job's data host for it (task
``c2d.prepare`` on ``c2d.HOST``). The host fetches both (hashing them), builds or loads the
image on its own engine under its own policy (``runner.host.prepare``), and answers the image's
record (its ID, facts, pins and build log) or the error that stopped it. The submission waits
for that answer, as it waited for a local build before; the record's image ID is then what the
approval binds.

A preparation (``runner.control.preparations``) lives in this API process only, for as long
as its submission waits: the host asks for it, and answers it, with its own credential, and
only a preparation opened for it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from jobs.errors import InvalidRequest, NotFound
from jobs.images import ImageRecord
from runner.control.api.deps import State
from runner.control.api.errors import errors
from runner.control.api.hosting import Me, blob_response

router = APIRouter(prefix="/v1/host/preparations")

ANSWER_MARGIN_S = 120.0
"""How much longer than the longest build a submission waits for its host's answer."""


class Answer(BaseModel):
    """A host's answer: the image's record, or the error that stopped it."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)
    record: ImageRecord | None = None
    error_kind: str | None = Field(default=None, max_length=40)
    error_message: str | None = Field(default=None, max_length=200_000)


@router.get("/{prep_id}", responses=errors(401, 404, 422))
def inputs(prep_id: str, me: Me, state: State) -> dict[str, Any]:
    """What to make: the bundle's digest, the Dockerfile's path or the archive's digest."""
    return state.preparations.of(me.name, prep_id).inputs()


@router.get("/{prep_id}/{what}", responses=errors(401, 404, 422))
def blob(prep_id: str, what: str, me: Me, state: State) -> StreamingResponse:
    """The preparation's ``bundle`` or ``archive``, with its digest in ``X-C2D-SHA256``."""
    prep = state.preparations.of(me.name, prep_id)
    digest = {"bundle": prep.bundle_digest, "archive": prep.archive_digest}.get(what)
    if digest is None:
        raise NotFound(f"preparation {prep_id} has no {what}")
    return blob_response(state.ctx.artifacts, digest)


@router.post("/{prep_id}", status_code=204, responses=errors(401, 404, 422))
def answer(prep_id: str, body: Answer, me: Me, state: State) -> None:
    """The host's answer; the waiting submission goes on with it."""
    prep = state.preparations.of(me.name, prep_id)
    if body.record is not None:
        if body.record.bundle_digest != prep.bundle_digest:
            raise InvalidRequest("the record names another bundle than this preparation's")
        if body.record.archive_sha256 != prep.archive_digest:
            raise InvalidRequest("the record names another archive than this preparation's")
        prep.record = body.record
    elif body.error_kind and body.error_message:
        prep.error = (body.error_kind, body.error_message)
    else:
        raise InvalidRequest("answer with a record, or with error_kind and error_message")
    prep.answered.set()
