"""Mock data: same layout, columns, types and row counts; deterministic; made from the view."""

from __future__ import annotations

import os
import stat

import numpy as np
import pandas as pd
import pytest
from profile_data import read_table, sensitive_patients, write_table

from jobs.datasets import scan
from jobs.errors import InvalidRequest, NotAllowed
from jobs.mock import write_mock
from jobs.profile import DatasetProfile, profile_dataset

TABLES = ("patients.csv", "sub/visits.tsv", "sub/deep/patients.csv.gz")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """(folder, profile) of three tables in three formats and a non-table file."""
    folder = tmp_path_factory.mktemp("data")
    frame = sensitive_patients(500)
    for rel in TABLES:
        write_table(folder / rel, frame)
    (folder / "sub/README.txt").write_text("about the data\n")
    return folder, profile_dataset(folder, chunk_rows=128)


def files_of(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("level", ["columns", "stats"])
def test_same_layout_columns_types_and_row_counts(tmp_path, dataset, level):
    real, profile = dataset
    old = os.umask(0o077)  # the modes must not depend on the caller's umask
    try:
        result = write_mock(profile, tmp_path / "mock", level=level, seed=5, chunk_rows=100)
    finally:
        os.umask(old)
    out = tmp_path / "mock"
    assert files_of(out) == files_of(real)
    for rel in TABLES:
        want, got = read_table(real / rel), read_table(out / rel)
        assert list(got.columns) == list(want.columns)
        assert got.dtypes.to_dict() == want.dtypes.to_dict(), rel
        assert len(got) == len(want)
        assert got.isna().any().to_dict() == want.isna().any().to_dict()
    assert (out / "sub/README.txt").read_bytes() == b""
    assert [(f.path, f.rows) for f in result.files] == [
        ("patients.csv", 500),
        ("sub/README.txt", None),
        ("sub/deep/patients.csv.gz", 500),
        ("sub/visits.tsv", 500),
    ]
    for path in [out, *out.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o755 if path.is_dir() else 0o644), path


def test_rows_overrides_every_tables_row_count(tmp_path, dataset):
    _, profile = dataset
    write_mock(profile, tmp_path / "a", level="stats", rows=17)
    write_mock(profile, tmp_path / "b", level="columns", rows=0)
    capped = write_mock(profile, tmp_path / "c", level="stats", max_rows=30)
    assert {f.rows for f in capped.files if f.rows is not None} == {30}
    assert (
        write_mock(profile, tmp_path / "d", level="stats", rows=9, max_rows=30).files[0].rows == 9
    )
    for rel in TABLES:
        assert len(read_table(tmp_path / "a" / rel)) == 17
        empty = read_table(tmp_path / "b" / rel)
        assert (len(empty), len(empty.columns)) == (0, 13)


def test_same_seed_same_bytes_other_seed_other_data(tmp_path, dataset):
    _, profile = dataset
    one = write_mock(profile, tmp_path / "1", level="stats", seed=11, chunk_rows=64)
    two = write_mock(profile, tmp_path / "2", level="stats", seed=11, chunk_rows=64)
    other = write_mock(profile, tmp_path / "3", level="stats", seed=12, chunk_rows=64)
    for rel in files_of(tmp_path / "1"):
        assert (tmp_path / "1" / rel).read_bytes() == (tmp_path / "2" / rel).read_bytes()
    assert one.digest == two.digest == scan(tmp_path / "1").digest
    assert other.digest != one.digest
    for rel in TABLES:
        a, b = read_table(tmp_path / "1" / rel), read_table(tmp_path / "3" / rel)
        assert (a["bmi"] != b["bmi"]).all()
        assert not a.equals(b)
    assert (one.level, one.seed) == ("stats", 11)


def test_a_mock_is_made_from_the_view_alone(tmp_path, dataset):
    _, profile = dataset
    for level in ("columns", "stats"):
        view = DatasetProfile.model_validate(profile.view(level, is_owner=False))
        full = write_mock(profile, tmp_path / f"full-{level}", level=level, seed=3)
        seen = write_mock(view, tmp_path / f"view-{level}", level=level, seed=3)
        assert full.digest == seen.digest


def test_stats_level_follows_ranges_without_touching_the_extremes(tmp_path, dataset):
    real, profile = dataset
    write_mock(profile, tmp_path / "m", level="stats", seed=2)
    want, got = read_table(real / "patients.csv"), read_table(tmp_path / "m/patients.csv")
    for name in ("age", "systolic_bp", "visits"):
        assert want[name].min() <= got[name].min() <= got[name].max() <= want[name].max()
    for name in ("bmi", "glucose", "hba1c"):
        low, high = want[name].min(), want[name].max()
        assert ((got[name] > low) & (got[name] < high) | got[name].isna()).all()
        assert got[name].mean() == pytest.approx(want[name].mean(), rel=0.1)
    assert got["hba1c"].isna().mean() == pytest.approx(want["hba1c"].isna().mean(), abs=0.05)
    assert got["sex"].nunique() == want["sex"].nunique()
    assert got["record_no"].tolist() == list(range(1, len(want) + 1))
    assert got["name"].is_unique
    assert got["patient_id"].is_unique
    visit = pd.to_datetime(got["visit"], format="%Y-%m-%d")
    assert want["visit"].min() <= visit.min().strftime("%Y-%m-%d")


def test_columns_level_uses_type_defaults(tmp_path, dataset):
    _, profile = dataset
    write_mock(profile, tmp_path / "m", level="columns", seed=2)
    got = read_table(tmp_path / "m/patients.csv")
    assert got["age"].between(0, 99).all()
    assert set(got["sex"]) <= {"sex_1", "sex_2", "sex_3"}
    assert got["name"].tolist() == [f"name_{i}" for i in range(1, len(got) + 1)]
    assert abs(got["bmi"].mean()) < 0.3
    assert pd.to_datetime(got["visit"]).between("2000-01-01", "2024-12-31").all()


def test_public_values_are_drawn_from_the_real_categories(tmp_path):
    frame = sensitive_patients(300)
    write_table(tmp_path / "d/p.csv", frame)
    profile = profile_dataset(tmp_path / "d", public={"*": ["sex", "diabetes"]})
    write_mock(profile, tmp_path / "m", level="columns", public={"*": ["sex", "diabetes"]})
    got = read_table(tmp_path / "m/p.csv")
    assert set(got["sex"]) <= set(frame["sex"])
    assert got["sex"].nunique() > 1
    assert set(got["diabetes"]) == {0, 1}
    write_mock(profile, tmp_path / "n", level="columns")  # no longer public
    assert set(read_table(tmp_path / "n/p.csv")["sex"]) <= {"sex_1", "sex_2", "sex_3"}


def test_refusals(tmp_path, dataset):
    _, profile = dataset
    with pytest.raises(NotAllowed, match="hidden"):
        write_mock(profile, tmp_path / "h", level="hidden")
    (tmp_path / "full").mkdir()
    (tmp_path / "full/x").write_text("keep me")
    with pytest.raises(InvalidRequest, match="not an empty folder"):
        write_mock(profile, tmp_path / "full", level="stats")
    assert (tmp_path / "full/x").read_text() == "keep me"
    with pytest.raises(InvalidRequest, match="rows"):
        write_mock(profile, tmp_path / "r", level="stats", rows=-1)


def test_parquet_mock_keeps_arrow_types(tmp_path):
    frame = sensitive_patients(200)
    frame["sex"] = frame["sex"].astype("category")
    frame["visit"] = pd.to_datetime(frame["visit"])
    frame["flag"] = frame["smoker"] == 1
    frame.to_parquet(tmp_path / "p.parquet", index=False)
    profile = profile_dataset(tmp_path, chunk_rows=64)
    for level in ("columns", "stats"):
        one = write_mock(profile, tmp_path / f"{level}1", level=level, seed=4, chunk_rows=64)
        two = write_mock(profile, tmp_path / f"{level}2", level=level, seed=4, chunk_rows=64)
        assert one.digest == two.digest
        got = pd.read_parquet(tmp_path / f"{level}1/p.parquet")
        assert len(got) == 200
        assert isinstance(got["sex"].dtype, pd.CategoricalDtype)
        assert got["visit"].dtype.kind == "M"
        assert got["flag"].dtype == np.bool_
        assert got["visits"].isna().any()
        assert got["age"].dtype == np.int64
