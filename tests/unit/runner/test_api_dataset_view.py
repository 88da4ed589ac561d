"""The public Dataset view: never the profile, and a hidden schema's public columns stay out."""

from __future__ import annotations

import json

from jobs.models import Dataset, DatasetPolicy
from runner.control.api.views import dataset_view

DIGEST = "sha256:" + "d" * 64


def _dataset(**policy) -> Dataset:
    return Dataset(
        name="pts",
        path="/srv/private/pts",
        digest=DIGEST,
        files=1,
        bytes=10,
        policy=DatasetPolicy(owner="olga", public_values={"t.csv": ["diagnosis"]}, **policy),
        registered=1.0,
        registered_by="olga",
    )


def test_a_hidden_schema_shows_no_column_name_in_the_dataset_view() -> None:
    view = dataset_view(_dataset(schema="hidden"))
    assert view["policy"]["schema"] == "hidden"
    assert "diagnosis" not in json.dumps(view)
    assert "/srv/private" not in json.dumps(view)


def test_a_visible_schema_lists_the_public_columns() -> None:
    view = dataset_view(_dataset(schema="columns"))
    assert view["policy"]["public_values"] == {"t.csv": ["diagnosis"]}
    assert set(view) == {"name", "owner", "digest", "files", "bytes", "policy", "created"}
