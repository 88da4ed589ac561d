"""The pure parts of the API: the kind -> status table, and the JSON shapes of the contract."""

from __future__ import annotations

import pytest

from runner.control.api.errors import status_of
from runner.control.api.views import dataset_view, job_view, rfc3339
from runner.errors import HTTP_STATUS
from tests.kit.worlds import build_control_world

# From /work/notes/api.md, "Errors".
CONTRACT = {
    "invalid": 422,
    "not_found": 404,
    "not_allowed": 403,
    "unauthenticated": 401,
    "conflict": 409,
    "too_large": 413,
    "unavailable": 503,
    "failed": 409,
}
JOB_KEYS = {
    "id", "name", "researcher", "dataset", "state", "reason", "code_digest", "image_id",
    "dataset_digest", "params_digest", "spec", "created", "updated", "started", "finished",
    "approval", "outcome", "withheld",
}  # fmt: skip


@pytest.mark.parametrize(("kind", "status"), sorted(CONTRACT.items()))
def test_every_kind_has_the_contracts_status(kind, status):
    assert status_of(kind) == status


def test_no_kind_is_mapped_that_the_contract_does_not_name():
    assert {str(k) for k in HTTP_STATUS} == set(CONTRACT)
    assert status_of("something new") == 500


def test_times_are_rfc3339_utc():
    assert rfc3339(0.5) == "1970-01-01T00:00:00.500000Z"
    assert rfc3339(None) is None


def test_job_and_dataset_views_have_the_contracts_keys_and_hide_the_data_path(tmp_path):
    world = build_control_world(tmp_path)
    try:
        job = world.approved()
        view = job_view(job)
        assert set(view) == JOB_KEYS
        assert set(view["approval"]) == {"approver", "note", "by_policy", "time"}
        assert view["outcome"] is None
        dataset = dataset_view(world.service.dataset_of(job))
        assert set(dataset) == {"name", "owner", "digest", "files", "bytes", "policy", "created"}
        assert str(tmp_path) not in repr(dataset)
    finally:
        world.close()
