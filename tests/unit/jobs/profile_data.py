"""Datasets for the profile and mock tests: the example patients, plus planted canaries."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[3]

CANARY = "ZQX-canary-7Q4W1"
"""A value that occurs once in the data: if it is anywhere in a view or a mock, that leaked."""
RARE = "Xenon"
"""A category seen in one row only."""


def make_patients(rows: int, seed: int) -> pd.DataFrame:
    """The frame examples/make_dataset.py writes."""
    spec = importlib.util.spec_from_file_location("make_dataset", REPO / "examples/make_dataset.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_patients(rows, seed)


def sensitive_patients(rows: int = 400, seed: int = 3) -> pd.DataFrame:
    """Patients with an identifier of large random integers, a visit date, nullable columns,
    a planted canary name and one rare category."""
    frame = make_patients(rows, seed)
    rng = np.random.default_rng(seed + 100)
    frame["record_no"] = rng.choice(10**12, size=rows, replace=False) + 10**12
    days = rng.integers(0, 3650, rows)
    frame["visit"] = (pd.Timestamp("2011-01-01") + pd.to_timedelta(days, unit="D")).strftime(
        "%Y-%m-%d"
    )
    frame["name"] = [f"Person{n:05d}{chr(65 + n % 26)}" for n in rng.permutation(rows)]
    frame.loc[rows // 2, "name"] = CANARY
    frame.loc[rows // 3, "sex"] = RARE
    frame["hba1c"] = np.round(rng.normal(5.6, 0.8, rows), 2)
    frame.loc[frame.index % 7 == 0, "hba1c"] = np.nan
    frame["visits"] = pd.array(rng.integers(0, 30, rows), dtype="Int64")
    frame.loc[frame.index % 11 == 0, "visits"] = pd.NA
    return frame


def write_table(path: Path, frame: pd.DataFrame) -> Path:
    """Write ``frame`` in the format its name says (.csv, .tsv, .csv.gz, .parquet)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    name = path.name
    if name.endswith(".parquet"):
        frame.to_parquet(path, index=False)
    else:
        sep = "\t" if ".tsv" in name else ","
        frame.to_csv(path, sep=sep, index=False)
    return path


def read_table(path: Path) -> pd.DataFrame:
    """Read a table the way a job would."""
    if path.name.endswith(".parquet"):
        return pd.read_parquet(path)
    return pd.read_csv(path, sep="\t" if ".tsv" in path.name else ",")


def string_cells(frame: pd.DataFrame) -> set[str]:
    """Every distinct non-null string cell of ``frame`` (dates and IDs included)."""
    found: set[str] = set()
    for name in frame.columns:
        column = frame[name].dropna()
        if column.dtype == object or pd.api.types.is_string_dtype(column.dtype):
            found |= {str(v) for v in column}
    return found


def json_numbers(document: object) -> list[tuple[str, float]]:
    """Every number in a JSON document with the key it is under."""
    found: list[tuple[str, float]] = []

    def walk(node: object, key: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, k)
        elif isinstance(node, list):
            for v in node:
                walk(v, key)
        elif isinstance(node, int | float) and not isinstance(node, bool):
            found.append((key, node))

    walk(document, "")
    return found


def quoted(value: str) -> str:
    """How a string value would appear inside a JSON document."""
    return json.dumps(value)
