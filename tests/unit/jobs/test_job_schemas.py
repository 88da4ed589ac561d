"""Dataset schemas through the service: profiled at registration, shown by role, on the ledger."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from profile_data import CANARY, sensitive_patients, write_table

from jobs.datasets import scan
from jobs.digests import canonical_digest
from jobs.errors import DatasetError, NotFound
from jobs.models import DatasetPolicy
from jobs.schemas import profile_scanned, rescanner


def _register(world, folder: Path, name: str, **policy):
    return world.register(world.olga, name, folder, DatasetPolicy(owner="olga", **policy))


@pytest.fixture
def patients(tmp_path: Path) -> Path:
    folder = tmp_path / "patients"
    write_table(folder / "patients.csv", sensitive_patients())
    return folder


def test_owner_sees_the_whole_profile_and_researchers_see_columns_without_values(world, patients):
    _register(world, patients, "pts")
    owner = world.service.dataset_schema(world.olga, "pts")
    mine = world.service.dataset_schema(world.rita, "pts")
    assert (owner["full"], mine["full"]) == (True, False)
    assert mine["schema"] == "columns"
    assert "public_values" in owner
    assert "public_values" not in mine
    owner_cols = owner["profile"]["files"][0]["columns"]
    mine_cols = mine["profile"]["files"][0]["columns"]
    assert [c["name"] for c in owner_cols] == [c["name"] for c in mine_cols]
    assert any("min" in c for c in owner_cols)
    assert not any({"min", "max", "mean", "values"} & set(c) for c in mine_cols)
    assert CANARY not in json.dumps(mine)


def test_the_ledger_has_the_digest_of_what_researchers_see(world, patients):
    _register(world, patients, "pts")
    body = world.ledger.entries_for("dataset:pts")[-1].body
    shown = world.service.dataset_schema(world.rob, "pts")
    assert body["schema_digest"] == canonical_digest(shown["profile"]) == shown["schema_digest"]


def test_a_hidden_schema_keeps_its_public_columns_out_of_the_ledger(world, patients):
    public = {"patients.csv": ["sex"]}
    _register(world, patients, "pts", schema="hidden", public_values=public)
    body = world.ledger.entries_for("dataset:pts")[-1].body
    assert "public_values" not in body["policy"]
    assert "sex" not in json.dumps(body)
    view = world.service.dataset_schema(world.rita, "pts")["profile"]
    assert "columns" not in view["files"][0]
    _register(world, patients, "open", schema="stats", public_values=public)
    body = world.ledger.entries_for("dataset:open")[-1].body
    assert body["policy"]["public_values"] == public


def test_a_dataset_without_tables_registers_and_lists_its_files(world, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello\n")
    _register(world, folder, "docs")
    files = world.service.dataset_schema(world.rita, "docs")["profile"]["files"]
    assert files == [{"path": "notes.txt", "format": "other", "bytes": 6}]


def test_parquet_without_pyarrow_registers_without_a_schema_that_says_why(
    world, tmp_path, monkeypatch
):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as on a host installed without it
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    folder = tmp_path / "pq"
    folder.mkdir()
    (folder / "t.parquet").write_bytes(b"PAR1 not really")
    _register(world, folder, "pq")
    with pytest.raises(NotFound, match="pyarrow"):
        world.service.dataset_schema(world.rita, "pq")


def test_an_unknown_dataset_has_no_schema(world):
    with pytest.raises(NotFound, match="not registered"):
        world.service.dataset_schema(world.rita, "nope")


def test_a_file_changed_after_hashing_is_hashed_and_profiled_again(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    table = folder / "t.csv"
    table.write_text("a,b\n1,2\n")
    first = scan(folder)
    table.write_text("a,b\n1,2\n3,4\n5,6\n")
    found, record = profile_scanned(
        first, DatasetPolicy(owner="o"), max_rows=None, rescan=rescanner(folder)
    )
    assert found.digest != first.digest
    assert record.digest == found.digest == scan(folder).digest
    assert record.profile is not None
    assert record.profile.files[0].rows == 3


def test_a_folder_that_keeps_changing_is_refused(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    table = folder / "t.csv"
    table.write_text("a\n1\n")
    first = scan(folder)
    rows = iter(range(100))

    def rescan(cache):
        found = scan(folder, cache)
        table.write_text("a\n" + "1\n" * (next(rows) + 2))  # changes again after each hash
        return found

    table.write_text("a\n1\n1\n")
    with pytest.raises(DatasetError, match="kept changing"):
        profile_scanned(first, DatasetPolicy(owner="o"), max_rows=None, rescan=rescan)
