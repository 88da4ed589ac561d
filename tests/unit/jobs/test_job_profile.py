"""Dataset profiles: types, counts and statistics of every table, read in bounded chunks."""

from __future__ import annotations

import gzip
import os
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from profile_data import make_patients, sensitive_patients, write_table

from jobs.errors import DatasetError
from jobs.profile import DatasetProfile, profile_dataset
from jobs.profile_stats import DistinctSketch
from jobs.tabular import ParquetUnavailable


def columns(profile: DatasetProfile, path: str) -> dict:
    entry = next(f for f in profile.files if f.path == path)
    return {c.name: c for c in entry.columns or ()}


def test_patients_csv_types_counts_and_statistics(tmp_path):
    frame = make_patients(5000, 7)
    write_table(tmp_path / "patients.csv", frame)
    profile = profile_dataset(tmp_path)
    (entry,) = profile.files
    assert (entry.path, entry.format, entry.compression) == ("patients.csv", "csv", None)
    assert (entry.rows, entry.rows_exact, entry.scanned) == (5000, True, 5000)
    assert entry.bytes == (tmp_path / "patients.csv").stat().st_size
    cols = columns(profile, "patients.csv")
    assert list(cols) == list(frame.columns)
    assert {n: c.dtype for n, c in cols.items()} == {
        "patient_id": "string",
        "age": "integer",
        "sex": "category",
        "bmi": "float",
        "smoker": "integer",
        "glucose": "float",
        "systolic_bp": "integer",
        "diabetes": "integer",
    }
    assert cols["patient_id"].key
    assert not cols["age"].key
    assert (cols["patient_id"].min_length, cols["patient_id"].max_length) == (8, 8)
    for name in ("age", "bmi", "glucose", "systolic_bp"):
        col, real = cols[name], frame[name]
        assert (col.min, col.max) == (real.min(), real.max())
        assert col.mean == pytest.approx(real.mean(), rel=1e-12)
        assert col.std == pytest.approx(real.std(), rel=1e-9)
        assert (col.distinct, col.distinct_exact) == (real.nunique(), True)
        assert (col.nullable, col.nulls) == (False, 0)
    assert type(cols["age"].min) is int
    assert type(cols["bmi"].min) is float
    assert cols["sex"].distinct == 2


def test_nulls_booleans_dates_and_empty_columns(tmp_path):
    (tmp_path / "t.csv").write_text(
        "n,flag,day,stamp,empty,code\n"
        "1,True,2020-01-02,2020-01-02 10:30:00,,A1\n"
        ",False,2020-03-04,2021-05-06 00:00:01,,\n"
        "3,,,2019-12-31 23:59:59,,B2\n"
        "4,True,2020-02-29,,,A1\n"
    )
    cols = columns(profile_dataset(tmp_path), "t.csv")
    assert (cols["n"].dtype, cols["n"].nullable, cols["n"].nulls) == ("integer", True, 1)
    assert (cols["n"].min, cols["n"].max) == (1, 4)
    assert type(cols["n"].min) is int
    assert (cols["flag"].dtype, cols["flag"].nulls, cols["flag"].mean) == ("boolean", 1, 2 / 3)
    assert (cols["day"].dtype, cols["day"].date_only) == ("datetime", True)
    assert (cols["day"].min, cols["day"].max) == ("2020-01-02T00:00:00", "2020-03-04T00:00:00")
    assert (cols["stamp"].dtype, cols["stamp"].date_only) == ("datetime", False)
    assert cols["stamp"].max == "2021-05-06T00:00:01"
    assert (cols["empty"].dtype, cols["empty"].nulls) == ("float", 4)
    assert (cols["code"].dtype, cols["code"].distinct, cols["code"].nulls) == ("string", 2, 1)


def test_a_column_pandas_types_differently_per_chunk_is_read_again_as_text(tmp_path):
    (tmp_path / "t.csv").write_text("mixed,grow,steady\n1,1,5\n2,2,6\nx,2.5,7\nyy,3,8\n")
    cols = columns(profile_dataset(tmp_path, chunk_rows=2), "t.csv")
    assert (cols["mixed"].dtype, cols["mixed"].distinct) == ("string", 4)
    assert (cols["mixed"].min_length, cols["mixed"].max_length) == (1, 2)
    assert (cols["grow"].dtype, cols["grow"].min, cols["grow"].max) == ("float", 1.0, 3.0)
    assert (cols["steady"].dtype, cols["steady"].mean) == ("integer", 6.5)


@settings(max_examples=25, deadline=None)
@given(
    data=st.lists(
        st.tuples(
            st.integers(-(10**6), 10**6) | st.none(),
            st.floats(-1e6, 1e6, allow_nan=False) | st.none(),
            st.sampled_from(["a", "bb", "ccc", "dddd"]),
            st.booleans() | st.none(),
            st.sampled_from(["2020-01-01", "2021-06-30 12:00:00"]) | st.none(),
        ),
        min_size=1,
        max_size=40,
    ),
    chunk=st.integers(1, 9),
)
def test_chunk_size_does_not_change_the_profile(tmp_path_factory, data, chunk):
    folder = tmp_path_factory.mktemp("d")
    frame = pd.DataFrame(data, columns=["i", "f", "s", "b", "d"]).astype({"i": "Int64"})
    write_table(folder / "t.csv", frame)
    whole = columns(profile_dataset(folder), "t.csv")
    chunked = columns(profile_dataset(folder, chunk_rows=chunk), "t.csv")
    for name, col in whole.items():
        other = chunked[name]
        assert other.model_dump(exclude={"mean", "std"}) == col.model_dump(exclude={"mean", "std"})
        for field in ("mean", "std"):
            expected = getattr(col, field)
            assert getattr(other, field) == (
                expected if expected is None else pytest.approx(expected, rel=1e-9, abs=1e-6)
            )


def test_tsv_gzip_and_other_files(tmp_path):
    frame = make_patients(300, 1)
    write_table(tmp_path / "a/p.tsv", frame)
    write_table(tmp_path / "b/p.csv.gz", frame)
    (tmp_path / "README.md").write_text("notes\n")
    profile = profile_dataset(tmp_path)
    assert [(f.path, f.format, f.compression) for f in profile.files] == [
        ("README.md", "other", None),
        ("a/p.tsv", "tsv", None),
        ("b/p.csv.gz", "csv", "gzip"),
    ]
    readme = profile.files[0]
    assert (readme.bytes, readme.rows, readme.columns) == (6, None, None)
    assert columns(profile, "a/p.tsv") == columns(profile, "b/p.csv.gz")
    assert len(columns(profile, "a/p.tsv")) == len(frame.columns)


def test_header_only_ragged_and_non_utf8_tables(tmp_path):
    (tmp_path / "header.csv").write_text("a,b\n")
    (tmp_path / "ragged.csv").write_text("a,b\n1,2\nSECRET-ROW,4,5\n")
    (tmp_path / "latin.csv").write_bytes("name\nJos\xe9\n".encode("latin-1"))
    (tmp_path / "blank.csv").write_bytes(b"")
    profile = profile_dataset(tmp_path)
    header = columns(profile, "header.csv")
    assert [(c.name, c.dtype, c.nullable) for c in header.values()] == [
        ("a", "string", False),
        ("b", "string", False),
    ]
    by_path = {f.path: f for f in profile.files}
    assert by_path["header.csv"].rows == 0
    for name in ("ragged.csv", "latin.csv", "blank.csv"):
        assert by_path[name].columns is None
        assert by_path[name].problem
    assert "SECRET" not in profile.model_dump_json()
    assert "UTF-8" in (by_path["latin.csv"].problem or "")


def test_max_rows_scanned_bounds_the_work_and_says_so(tmp_path):
    write_table(tmp_path / "p.csv", make_patients(1000, 2))
    (entry,) = profile_dataset(tmp_path, max_rows_scanned=100, chunk_rows=64).files
    assert (entry.rows, entry.rows_exact, entry.scanned) == (100, False, 100)
    assert columns(DatasetProfile(files=(entry,)), "p.csv")["age"].nulls == 0
    (whole,) = profile_dataset(tmp_path, max_rows_scanned=1000).files
    assert (whole.rows, whole.rows_exact) == (1000, True)


def test_links_are_refused(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "secret.csv").write_text("a\n1\n")
    os.symlink(tmp_path / "secret.csv", tmp_path / "d/link.csv")
    with pytest.raises(DatasetError, match="not a regular file"):
        profile_dataset(tmp_path / "d")
    with pytest.raises(DatasetError, match="not a folder"):
        profile_dataset(tmp_path / "missing")


def test_public_columns_keep_their_values_and_nothing_else(tmp_path):
    frame = sensitive_patients()
    write_table(tmp_path / "p.csv", frame)
    write_table(tmp_path / "q.csv", frame[["sex", "name"]])
    profile = profile_dataset(tmp_path, public={"p.csv": ["sex", "smoker"], "*": ["diabetes"]})
    cols = columns(profile, "p.csv")
    counts = frame["sex"].value_counts()
    assert cols["sex"].values == tuple(sorted(counts.index))
    assert cols["sex"].counts == tuple(counts[v] for v in sorted(counts.index))
    assert (cols["smoker"].values, cols["diabetes"].values) == ((0, 1), (0, 1))
    assert all(c.values is None for n, c in cols.items() if n not in ("sex", "smoker", "diabetes"))
    assert all(c.values is None for c in columns(profile, "q.csv").values())


def test_public_values_are_capped(tmp_path):
    write_table(tmp_path / "p.csv", pd.DataFrame({"k": [f"v{i}" for i in range(1500)]}))
    assert columns(profile_dataset(tmp_path, public={"*": ["k"]}), "p.csv")["k"].values is None


def test_distinct_sketch_is_exact_then_close():
    sketch = DistinctSketch(size=1024)
    rng = np.random.default_rng(0)
    values = rng.permutation(50_000)
    for part in np.array_split(np.concatenate([values[:800], values[:800]]), 7):
        sketch.add(pd.util.hash_array(part))
    assert (sketch.count(), sketch.exact) == (800, True)
    for part in np.array_split(np.concatenate([values, values]), 13):
        sketch.add(pd.util.hash_array(part))
    assert not sketch.exact
    assert sketch.count() == pytest.approx(50_000, rel=0.1)


def test_parquet_without_pyarrow_says_what_to_install(tmp_path, monkeypatch):
    (tmp_path / "t.parquet").write_bytes(b"PAR1 not really")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ParquetUnavailable, match=r"t\.parquet.*pip install pyarrow") as info:
        profile_dataset(tmp_path)
    assert info.value.kind == "invalid"


def test_parquet_types_rows_and_categories(tmp_path):
    frame = sensitive_patients(300)
    frame["sex"] = frame["sex"].astype("category")
    frame["visit"] = pd.to_datetime(frame["visit"])
    frame["flag"] = frame["smoker"] == 1
    frame.index = frame.index + 1000  # a stored index is not a column
    frame.to_parquet(tmp_path / "p.parquet")
    (entry,) = profile_dataset(tmp_path, chunk_rows=64).files
    assert (entry.format, entry.rows, entry.rows_exact) == ("parquet", 300, True)
    cols = columns(DatasetProfile(files=(entry,)), "p.parquet")
    assert list(cols) == list(frame.columns)
    assert {n: c.dtype for n, c in cols.items() if n in ("sex", "visit", "flag", "visits")} == {
        "sex": "category",
        "visit": "datetime",
        "flag": "boolean",
        "visits": "integer",
    }
    assert cols["sex"].categorical
    assert cols["visit"].date_only
    assert (cols["visits"].nullable, cols["hba1c"].dtype) == (True, "float")
    (limited,) = profile_dataset(tmp_path, max_rows_scanned=10).files
    assert (limited.rows, limited.rows_exact, limited.scanned) == (300, True, 10)


def test_gzip_members_are_read_whole(tmp_path):
    with gzip.open(tmp_path / "t.csv.gz", "wt") as handle:
        handle.write("a\n" + "".join(f"{i}\n" for i in range(100)))
    (entry,) = profile_dataset(tmp_path, chunk_rows=16).files
    assert entry.rows == 100
    assert columns(profile_dataset(tmp_path), "t.csv.gz")["a"].max == 99
