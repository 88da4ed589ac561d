"""The API's documents and the client's models of them (``jobs.views``) name the same fields,
so a notebook user's typed objects carry everything the API sends, for every reader."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from jobs.models import OutputFile
from jobs.views import ApprovalView, JobView, OutcomeView, OutputView
from runner.control.api.views import job_view
from tests.kit.worlds import ok_outcome


def fields_of(model: type[BaseModel]) -> set[str]:
    return {f.alias or name for name, f in model.model_fields.items()}


def assert_covers(model: type[BaseModel], doc: dict[str, Any]) -> None:
    assert set(doc) <= fields_of(model), f"{model.__name__} lacks {set(doc) - fields_of(model)}"


def test_a_finished_job_reads_back_with_every_field(reviewed_world: Any) -> None:
    w = reviewed_world
    job = w.approved()
    claim = w.service.claim(job.id, "worker-1", 30)
    outputs = [OutputFile(name="model.skops", sha256="sha256:" + "a" * 64, bytes=3)]
    w.service.finish(job.id, claim.fence, ok_outcome(outputs=outputs))

    doc = job_view(w.service.get_job(w.olga, job.id))  # the owner sees the outcome
    view = JobView.model_validate(doc)
    assert_covers(JobView, doc)
    assert_covers(OutcomeView, doc["outcome"])
    assert_covers(ApprovalView, doc["approval"])
    assert_covers(OutputView, doc["outcome"]["outputs"][0])
    assert view.state.value == "succeeded"
    assert view.ended
    assert not view.failed
    assert view.outcome is not None
    assert view.outcome.metrics == {"accuracy": 0.9}
    assert view.spec.command == ["python", "train.py"]
    assert view.approval is not None
    assert view.approval.approver == "olga"

    withheld = JobView.model_validate(job_view(w.service.get_job(w.rita, job.id)))
    assert withheld.withheld
    assert withheld.outcome is None  # the researcher's copy, before release
