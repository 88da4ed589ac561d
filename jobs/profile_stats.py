"""Streaming summaries of one table column: its type, nulls, ranges, moments and distinct count.

A ``ColumnSummary`` is fed the column chunk by chunk and keeps bounded state: running moments
(Chan's parallel update), minimum and maximum, string length range, and a distinct-count sketch
that is exact up to ``SKETCH_SIZE`` distinct values and a k-minimum-values estimate beyond.
It never keeps a string value, except the values of a column the owner declared public.

Types follow what ``pd.read_csv`` / ``pd.read_parquet`` give a job: a text column whose chunks
pandas reads as integers in one chunk and strings in another is a *conflict*, and the caller
reads that column again as text. In text tables, floats that are all whole numbers next to
empty cells are integers with nulls (pandas reads every such column as float64), ISO dates
(``YYYY-MM-DD...``) are datetimes, and a string column with at most ``CATEGORY_MAX`` distinct
values, each seen twice on average, is a category.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Literal

import numpy as np
import pandas as pd

Kind = Literal["integer", "float", "boolean", "string", "datetime"]

SKETCH_SIZE = 16_384
CATEGORY_MAX = 50
PUBLIC_VALUES_MAX = 1_000
KEY_RATIO_ESTIMATED = 0.97
"""With an estimated distinct count, a column this close to all-distinct counts as a key."""

_DATE_PREFIX = r"\d{4}-\d\d-\d\d"


class DistinctSketch:
    """Distinct values by 64-bit hash: exact up to ``size`` of them, then a KMV estimate."""

    def __init__(self, size: int = SKETCH_SIZE) -> None:
        self._size = size
        self._hashes = np.empty(0, dtype=np.uint64)
        self.exact = True

    def add(self, hashes: np.ndarray) -> None:
        """Add the hashes of some values (any order, repeats allowed)."""
        if not self.exact:
            hashes = hashes[hashes < self._hashes[-1]]
        merged = np.union1d(self._hashes, hashes)
        if merged.size > self._size:
            self.exact = False
            merged = merged[: self._size]
        self._hashes = merged

    def count(self) -> int:
        """The number of distinct values (an estimate when ``exact`` is False)."""
        if self.exact:
            return int(self._hashes.size)
        # The k-th smallest of n uniform hashes sits near k / n of the hash range.
        kth = (float(self._hashes[-1]) + 1.0) / 2.0**64
        return round((self._size - 1) / kth)


class ColumnSummary:
    """What is known about one column so far; ``add`` chunks, then read ``result()``.

    ``text_format`` turns on the text-table rules (integers with nulls, ISO dates);
    ``public`` keeps the values and their counts (at most ``PUBLIC_VALUES_MAX`` of them).
    After a type conflict, ``conflict`` is True and further chunks are ignored.
    """

    def __init__(self, name: str, *, text_format: bool, public: bool = False) -> None:
        self.name = name
        self.text_format = text_format
        self.kinds: set[Kind] = set()
        self.count = 0
        self.nulls = 0
        self.conflict = False
        self.categorical = False
        self._n, self._mean, self._m2 = 0, 0.0, 0.0
        self._min: Any = None
        self._max: Any = None
        self._true = 0
        self._fractional = False
        self._len: tuple[int, int] | None = None
        self._maybe_dates = text_format
        self._date_only = True
        self._sketch = DistinctSketch()
        self._values: Counter[Any] | None = Counter() if public else None

    def add(self, series: pd.Series) -> None:
        """Summarize one more chunk of the column."""
        if self.conflict:
            return
        present = series.dropna()
        self.nulls += len(series) - len(present)
        if present.empty:
            return
        kind, values = self._classify(present)
        kinds = self.kinds | {kind}
        if len(kinds) > 1 and not kinds <= {"integer", "float"}:
            self.conflict = True
            return
        self.kinds = kinds
        self.count += len(values)
        if kind in ("integer", "float"):
            self._add_numbers(values, kind)
        elif kind == "boolean":
            self._true += int(values.astype(bool).sum())
            self._sketch.add(pd.util.hash_array(values.astype(bool).to_numpy()))
        elif kind == "datetime":
            self._add_datetimes(values)
            self._sketch.add(pd.util.hash_array(values.astype("int64").to_numpy()))
        else:
            self._add_strings(values)
        if self._values is not None:
            self._values.update(_plain(v) for v in values.tolist())
            if len(self._values) > PUBLIC_VALUES_MAX:
                self._values = None

    def _classify(self, present: pd.Series) -> tuple[Kind, pd.Series]:
        dtype = present.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            self.categorical = True
            return "string", present.astype("str")
        if pd.api.types.is_bool_dtype(dtype):
            return "boolean", present
        if pd.api.types.is_integer_dtype(dtype):
            return "integer", present
        if pd.api.types.is_float_dtype(dtype):
            numbers = present.to_numpy(dtype=float)
            whole = np.isfinite(numbers).all() and (numbers == np.floor(numbers)).all()
            self._fractional = self._fractional or not whole
            return "float", present
        if pd.api.types.is_datetime64_any_dtype(dtype):
            if getattr(dtype, "tz", None) is not None:
                present = present.dt.tz_convert("UTC").dt.tz_localize(None)
            return "datetime", present
        if pd.api.types.is_object_dtype(dtype) and all(
            isinstance(v, bool | np.bool_) for v in present.tolist()
        ):
            return "boolean", present.astype(bool)
        return "string", present.astype("str")

    def _add_numbers(self, values: pd.Series, kind: Kind) -> None:
        numbers = values.to_numpy(dtype=float)
        self._sketch.add(pd.util.hash_array(numbers))
        finite = numbers[np.isfinite(numbers)]
        if finite.size:
            mean = float(finite.mean())
            m2 = float(((finite - mean) ** 2).sum())
            n = self._n + finite.size
            delta = mean - self._mean
            self._mean += delta * finite.size / n
            self._m2 += m2 + delta**2 * self._n * finite.size / n
            self._n = n
            kept = values[np.isfinite(numbers)]
            low, high = kept.min(), kept.max()
            if kind == "integer":
                low, high = int(low), int(high)
            else:
                low, high = float(low), float(high)
            self._min = low if self._min is None else min(self._min, low)
            self._max = high if self._max is None else max(self._max, high)

    def _add_datetimes(self, values: pd.Series) -> None:
        low, high = values.min(), values.max()
        self._min = low if self._min is None else min(self._min, low)
        self._max = high if self._max is None else max(self._max, high)
        self._date_only = self._date_only and bool((values.dt.normalize() == values).all())

    def _add_strings(self, values: pd.Series) -> None:
        self._sketch.add(pd.util.hash_array(values.to_numpy(dtype=object)))
        lengths = values.str.len()
        low, high = int(lengths.min()), int(lengths.max())
        self._len = (
            (low, high)
            if self._len is None
            else (
                min(self._len[0], low),
                max(self._len[1], high),
            )
        )
        if self._maybe_dates:
            self._check_dates(values)

    def _check_dates(self, values: pd.Series) -> None:
        if not values.str.match(_DATE_PREFIX).all():
            self._maybe_dates = False
            return
        try:
            parsed = pd.to_datetime(values, format="ISO8601", errors="coerce")
        except (ValueError, TypeError, OverflowError):  # mixed time zones and the like
            parsed = None
        if parsed is None or parsed.isna().any():
            self._maybe_dates = False
            return
        if getattr(parsed.dtype, "tz", None) is not None:
            parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
        self._add_datetimes(parsed)

    def dtype(self) -> str:
        """The column's type in c2d's portable vocabulary."""
        if not self.kinds:
            # pandas reads a column of only empty cells as float64, and no rows as text.
            return "float" if self.nulls else "string"
        if "float" in self.kinds:
            # pandas reads whole numbers beside empty cells as float64; written back as
            # integers with blanks they read the same, so they are integers with nulls.
            whole = self.text_format and not self._fractional and self.nulls > 0
            return "integer" if whole else "float"
        (kind,) = self.kinds
        if kind != "string":
            return kind
        if self._maybe_dates and self._min is not None:
            return "datetime"
        distinct = self._sketch.count()
        if self.categorical or (distinct <= CATEGORY_MAX and 2 * distinct <= self.count):
            return "category"
        return "string"

    def result(self) -> dict[str, Any]:
        """The fields of a ``jobs.profile.ColumnProfile`` for this column."""
        dtype = self.dtype()
        distinct = self._sketch.count()
        numeric = dtype in ("integer", "float")
        key = dtype in ("integer", "string") and self.count > 0
        key = key and (
            distinct == self.count
            if self._sketch.exact
            else distinct >= KEY_RATIO_ESTIMATED * self.count
        )
        fields: dict[str, Any] = {
            "name": self.name,
            "dtype": dtype,
            "nullable": self.nulls > 0,
            "key": key,
            "date_only": dtype == "datetime" and self._date_only,
            "categorical": self.categorical,
            "nulls": self.nulls,
            "distinct": distinct,
            "distinct_exact": self._sketch.exact,
        }
        if numeric and self._min is not None:
            std = math.sqrt(self._m2 / (self._n - 1)) if self._n > 1 else 0.0
            fields |= {"min": self._min, "max": self._max}
            fields |= {k: v for k, v in (("mean", self._mean), ("std", std)) if math.isfinite(v)}
        if dtype == "integer" and self._min is not None:
            fields |= {"min": int(self._min), "max": int(self._max)}
        if dtype == "boolean" and self.count:
            fields["mean"] = self._true / self.count
        if dtype == "datetime" and self._min is not None:
            fields |= {"min": self._min.isoformat(), "max": self._max.isoformat()}
        if dtype in ("string", "category") and self._len is not None:
            fields |= {"min_length": self._len[0], "max_length": self._len[1]}
        if self._values is not None and dtype in ("integer", "string", "category"):
            pairs = sorted(self._values.items())
            fields["values"] = tuple(_plain(v) for v, _ in pairs)
            fields["counts"] = tuple(c for _, c in pairs)
        return fields


def _plain(value: Any) -> Any:
    """A JSON scalar for a pandas/numpy value (whole floats become ints)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
