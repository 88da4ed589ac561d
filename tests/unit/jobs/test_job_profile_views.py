"""What each schema level shows of a profile, and that no level shows a cell it should not."""

from __future__ import annotations

import json

import pytest
from profile_data import (
    CANARY,
    RARE,
    json_numbers,
    quoted,
    sensitive_patients,
    string_cells,
    write_table,
)
from pydantic import ValidationError

from jobs.profile import ColumnProfile, DatasetProfile, FileProfile, profile_dataset


@pytest.fixture(scope="module")
def sensitive(tmp_path_factory):
    """(profile, real frame) of a dataset with a canary, a rare category, IDs and dates."""
    folder = tmp_path_factory.mktemp("data")
    frame = sensitive_patients()
    write_table(folder / "visits/patients.csv", frame)
    (folder / "visits/notes.txt").write_text("free text the owner wrote\n")
    return profile_dataset(folder, public={"visits/patients.csv": ["sex"]}), frame


def test_hidden_shows_file_names_formats_and_sizes_only(sensitive):
    profile, frame = sensitive
    view = profile.view("hidden", is_owner=False)
    assert view["redacted_to"] == "hidden"
    assert [set(f) for f in view["files"]] == [{"path", "format", "bytes"}] * 2
    text = json.dumps(view)
    assert not any(quoted(str(name)) in text for name in frame.columns)


def test_columns_shows_names_types_and_row_counts_but_no_number_of_the_data(sensitive):
    profile, frame = sensitive
    view = profile.view("columns", is_owner=False)
    table = next(f for f in view["files"] if f["path"] == "visits/patients.csv")
    assert table["rows"] == len(frame)
    by_name = {c["name"]: c for c in table["columns"]}
    assert list(by_name) == list(frame.columns)
    assert {n: c["dtype"] for n, c in by_name.items()}["visit"] == "datetime"
    # Every number in the view is a count of rows or bytes: nothing measured on a cell.
    assert {key for key, _ in json_numbers(view)} == {"schema_version", "bytes", "rows", "scanned"}
    text = json.dumps(view)
    assert not {v for v in string_cells(frame.drop(columns="sex")) if v in text}
    assert CANARY not in text


def test_stats_shows_moments_but_no_string_and_no_identifier(sensitive):
    profile, frame = sensitive
    view = profile.view("stats", is_owner=False)
    text = json.dumps(view)
    assert not {v for v in string_cells(frame.drop(columns=["sex", "visit"])) if v in text}
    # Datetimes are like numbers: their range is shown at stats, and nothing else of them.
    shown_dates = {v for v in frame["visit"] if v in text}
    assert shown_dates == {frame["visit"].min(), frame["visit"].max()}
    by_name = {c["name"]: c for c in view["files"][1]["columns"]}
    age = by_name["age"]
    assert (age["min"], age["max"]) == (frame["age"].min(), frame["age"].max())
    assert {"mean", "std", "distinct", "nulls"} <= set(age)
    assert by_name["name"]["distinct"] == len(frame)
    assert "min" not in by_name["name"]
    # The identifier column is key-like: its range would be two real identifiers.
    record = by_name["record_no"]
    assert record["key"]
    assert not {"min", "max", "mean", "std"} & set(record)
    assert not set(frame["record_no"]) & {n for _, n in json_numbers(view)}
    assert by_name["visit"]["min"] == frame["visit"].min() + "T00:00:00"


def test_no_string_cell_is_in_any_view_even_the_owners(sensitive):
    profile, frame = sensitive
    # sex is public (tested below); visit dates have a range at stats (tested above).
    secret = string_cells(frame.drop(columns=["sex", "visit"]))
    assert CANARY in secret
    assert any(v.startswith("P0") for v in secret)
    for level in ("hidden", "columns", "stats"):
        for owner in (False, True):
            text = json.dumps(profile.view(level, is_owner=owner))
            assert not {v for v in secret if v in text}, (level, owner)
    assert CANARY not in profile.model_dump_json()


def test_public_columns_show_values_and_counts_only_at_stats(sensitive):
    profile, frame = sensitive
    public = {"visits/patients.csv": ["sex"]}
    sex = {"columns": None, "stats": None}
    for level in sex:
        table = profile.view(level, is_owner=False, public=public)["files"][1]
        sex[level] = next(c for c in table["columns"] if c["name"] == "sex")
    assert sex["columns"]["values"] == sorted(frame["sex"].unique())
    assert "counts" not in sex["columns"]
    assert sum(sex["stats"]["counts"]) == len(frame)
    # The owner took the column off the public list: the stored values stay out of views.
    for level in ("columns", "stats"):
        assert quoted(RARE) not in json.dumps(profile.view(level, is_owner=False))


def test_owners_see_the_whole_profile(sensitive):
    profile, _ = sensitive
    for level in ("hidden", "columns", "stats"):
        full = profile.view(level, is_owner=True)
        assert DatasetProfile.model_validate(full) == profile


def test_a_view_reads_back_and_never_regains_what_was_removed(sensitive):
    profile, _ = sensitive
    columns_view = DatasetProfile.model_validate(profile.view("columns", is_owner=False))
    assert columns_view == profile.redacted("columns")
    assert columns_view.redacted("stats") == columns_view
    assert columns_view.redacted("stats").redacted_to == "columns"
    hidden = profile.redacted("hidden")
    assert hidden.redacted("stats").files == hidden.files


def test_models_are_frozen_strict_and_refuse_escaping_paths():
    col = ColumnProfile(name="a", dtype="integer", nullable=False)
    with pytest.raises(ValidationError):
        col.dtype = "float"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="extra"):
        ColumnProfile(name="a", dtype="integer", nullable=False, sample=["x"])  # type: ignore[call-arg]
    for bad in ("../x.csv", "/etc/passwd", "a/../../b.csv", "a//b.csv"):
        with pytest.raises(ValidationError):
            FileProfile(path=bad, format="csv", bytes=1)
    with pytest.raises(ValidationError, match="unique"):
        FileProfile(path="a.csv", format="csv", bytes=1, columns=(col, col))
    entry = FileProfile(path="a.csv", format="csv", bytes=1)
    with pytest.raises(ValidationError, match="unique"):
        DatasetProfile(files=(entry, entry))
    with pytest.raises(ValidationError):
        DatasetProfile(schema_version=2, files=())  # type: ignore[arg-type]
