"""What schemathesis cannot make up on its own, for ``test_openapi_schemathesis``.

Loaded by the schemathesis CLI (``SCHEMATHESIS_HOOKS``), in its own process:

- the formats of notes and reasons (``jobs.fields.NOTE_FORMAT``): text a person may write;
- ``POST /v1/jobs`` with a real submission some of the time: a deterministic code bundle and
  its spec on the test's dataset (``C2D_ST_JOB_DIR``), which no generator finds by chance.
  The stateful phase follows the document's links from the job it answers to the job's
  status, artifacts and receipt. Invalid forms, and half of the valid ones, stay as
  generated, so the route still meets made-up forms.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import strategies as st

from jobs.bundle import pack
from jobs.fields import NOTE_FORMAT, REASON_FORMAT, check_note
from jobs.spec import JobSpec


def _note(text: str) -> bool:
    try:
        check_note(text)
    except ValueError:
        return False
    return True


_TEXT = st.text(st.characters(codec="utf-8"), max_size=40).filter(_note)
schemathesis.openapi.format(NOTE_FORMAT, _TEXT)
schemathesis.openapi.format(REASON_FORMAT, _TEXT.filter(lambda t: bool(t.strip())))


def _submission() -> dict[str, Any]:
    folder = Path(os.environ["C2D_ST_JOB_DIR"])
    bundle = pack(folder)
    spec = JobSpec.from_yaml(folder / "job.yaml")
    return {"spec": spec.model_dump_json(), "bundle": bundle.data}


def _schema_valid(body: Any) -> bool:
    """Whether ``body`` is a form the document allows (``spec`` text, ``bundle`` and the
    optional ``image_archive`` files): only such a body may be swapped for a real one, or a
    case schemathesis made invalid on purpose would reach the API valid, and its answer be
    judged as the answer to an invalid form."""
    if not isinstance(body, dict) or not isinstance(body.get("spec"), str):
        return False
    files = [body.get("bundle")] + ([body["image_archive"]] if "image_archive" in body else [])
    return all(isinstance(f, str | bytes) for f in files)


@schemathesis.hook.apply_to(method="POST", path="/v1/jobs")
def flatmap_body(ctx: Any, body: Any) -> Any:
    """Half of the schema-valid submissions are the real job; the rest as generated."""
    if not _schema_valid(body):
        return st.just(body)
    return st.sampled_from([body, _submission()])
