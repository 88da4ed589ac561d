"""No real cell value gets into mock data: every string, ID, rare value and canary is checked
against the mock's bytes, and numbers against what each level allows."""

from __future__ import annotations

import gzip
import json
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from profile_data import (
    CANARY,
    RARE,
    make_patients,
    read_table,
    sensitive_patients,
    string_cells,
    write_table,
)

from jobs.mock import write_mock
from jobs.profile import profile_dataset

LEVELS = ("columns", "stats")
FLOATS = ("bmi", "glucose", "hba1c")


def mock_bytes(folder: Path) -> bytes:
    """All mock files' contents, gzip members unpacked, as one byte string."""
    parts = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            parts.append(gzip.decompress(data) if path.name.endswith(".gz") else data)
    return b"\n".join(parts)


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """(folder, frame, profile): the sensitive patients as CSV and gzipped TSV."""
    folder = tmp_path_factory.mktemp("real")
    frame = sensitive_patients(2000, seed=9)
    write_table(folder / "patients.csv", frame)
    write_table(folder / "copy/patients.tsv.gz", frame)
    return folder, frame, profile_dataset(folder, chunk_rows=512)


@pytest.mark.parametrize("level", LEVELS)
def test_no_real_string_is_anywhere_in_the_mock(tmp_path, real, level):
    _folder, frame, profile = real
    write_mock(profile, tmp_path / "m", level=level, seed=1)
    data = mock_bytes(tmp_path / "m")
    secrets = string_cells(frame.drop(columns="visit"))
    assert {CANARY, RARE, "P0000123", "F", "M"} <= secrets
    long = {s for s in secrets if len(s) >= 4}
    assert not {s for s in long if s.encode() in data}
    for rel in ("patients.csv", "copy/patients.tsv.gz"):
        mock = read_table(tmp_path / "m" / rel)
        assert not string_cells(mock) & secrets
        # Identifiers are numbered, never taken: not one real record number is in the mock.
        assert not set(mock["record_no"]) & set(frame["record_no"])


def test_floats_never_equal_a_real_value_at_any_level(tmp_path, real):
    _, frame, profile = real
    for level in LEVELS:
        write_mock(profile, tmp_path / level, level=level, seed=3)
        mock = read_table(tmp_path / level / "patients.csv")
        for name in FLOATS:
            assert not set(mock[name].dropna()) & set(frame[name].dropna()), (level, name)


def test_below_stats_the_mock_does_not_depend_on_any_value(tmp_path):
    """Two datasets with the same schema and different values give the same mock bytes, so
    whatever numbers the mock holds, none came from the data (collisions with real integers,
    like an age of 40, are the type defaults' and inevitable)."""
    digests = set()
    for seed in (21, 22):
        frame = make_patients(700, seed)
        frame["visit"] = pd.Timestamp("2015-06-01") + pd.to_timedelta(
            np.random.default_rng(seed).integers(0, 99, 700), unit="D"
        )
        frame["visit"] = frame["visit"].dt.strftime("%Y-%m-%d")
        write_table(tmp_path / f"d{seed}/patients.csv", frame)
        profile = profile_dataset(tmp_path / f"d{seed}")
        digests.add(write_mock(profile, tmp_path / f"m{seed}", level="columns", seed=0).digest)
    assert len(digests) == 1
    mock = read_table(tmp_path / "m21/patients.csv")
    assert mock["age"].between(0, 99).all()  # integers come from the default range only


def test_at_stats_integers_come_from_the_range_only(tmp_path, real):
    _, frame, profile = real
    write_mock(profile, tmp_path / "m", level="stats", seed=4)
    mock = read_table(tmp_path / "m/patients.csv")
    for name in ("age", "systolic_bp", "smoker", "diabetes", "visits"):
        low, high = frame[name].min(), frame[name].max()
        assert mock[name].dropna().between(low, high).all()
    # Rows are not copied: no mock row of the numeric columns is a real row.
    numeric = ["age", "bmi", "glucose", "systolic_bp"]
    rows = set(map(tuple, frame[numeric].to_numpy()))
    assert not set(map(tuple, mock[numeric].to_numpy())) & rows


# Every cell holds three capitals in a row, which neither JSON words, column names, numbers
# nor placeholders do: any hit is a real leak. Quotes, commas and tabs test the CSV quoting.
_UPPER = "ABCDEFGHJKLMNPQRSTUVWXYZ"
CELL = st.builds(
    lambda head, core, tail: head + core + tail,
    st.text(alphabet=_UPPER + "0123456789,\"' \t-", max_size=5),
    st.text(alphabet=_UPPER, min_size=3, max_size=6),
    st.text(alphabet=_UPPER + "0123456789,\"' -", max_size=5),
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cells=st.lists(st.tuples(CELL, CELL), min_size=1, max_size=30),
    fmt=st.sampled_from(["t.csv", "t.tsv", "t.csv.gz"]),
    level=st.sampled_from(LEVELS),
)
def test_property_no_cell_of_any_table_reaches_the_mock_or_a_view(cells, fmt, level):
    frame = pd.DataFrame(cells, columns=["code", "label"])
    real = string_cells(frame)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_table(root / "d" / fmt, frame)
        profile = profile_dataset(root / "d", chunk_rows=7)
        write_mock(profile, root / "m", level=level, seed=0)
        data = mock_bytes(root / "m")
        views = [profile.view(lv, is_owner=o) for lv in LEVELS for o in (False, True)]
        text = profile.model_dump_json() + json.dumps(views)
    cores = {max(re.findall(f"[{_UPPER}]{{3,}}", v), key=len) for v in real}
    assert not {c for c in cores if c.encode() in data or c in text}
