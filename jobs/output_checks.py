"""Automatic checks on a succeeded run's outputs, for the data owner who decides their release.

A job's outputs are derived from private data; a model or a metric may carry rows of it. The
owner reviews them before release (``DatasetPolicy.review_outputs``), and these checks point at
what deserves a closer look. Each dataset's owner sets them (``OutputChecks``, in the policy);
the data host runs them on the files it collected, never on anything the job said about them
(``runner.host.output_checks``), and signs the results inside the outcome. They are heuristics
that warn; the owner decides:

- ``file_types``: every output's suffix is one the owner allows (``metrics.json`` always is);
- ``file_size``: no output is larger than the owner allows;
- ``metric_names``: no metric name looks like row-level data: an SSN or phone-like run of
  digits, a long number (an identifier), an e-mail or web address, a personal field
  (``ssn``, ``email``, ``dob``...) or long free text;
- ``metric_values``: every metric is a finite number and none looks like an identifier (an
  integer of nine digits or more);
- ``min_cell``: no count-like metric (``n``, ``count``, ``*_rows``, ``support``...) is
  between 1 and the minimum cell size (default 10), the classic way a count singles out a few
  people;
- ``max_rows``: no text or tabular output (``.csv``, ``.tsv``, ``.txt``, ``.jsonl``,
  ``.ndjson``) has more lines than the owner allows (default 1000).

A failed check does not block a release: the owner releases despite it, saying so
(``Review.release``), and the ``job.released`` entry carries every check's result.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator

from jobs.digests import canonical_digest
from jobs.fields import WHOLE, Whole
from jobs.safe_text import one_line

CheckName = Literal[
    "file_types", "file_size", "metric_names", "metric_values", "min_cell", "max_rows"
]
ROW_SUFFIXES = (".csv", ".tsv", ".txt", ".jsonl", ".ndjson")
"""Outputs whose lines are rows, counted by ``max_rows``."""
ALWAYS_ALLOWED = ("metrics.json",)
DEFAULT_MIN_CELL = 10
DEFAULT_MAX_ROWS = 1000
MAX_DETAIL_CHARS = 400
_SUFFIX = re.compile(r"\.[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
MAX_COUNT = 2**53 - 1
"""The largest size or row count a check may name: the ledger's canonical JSON (RFC 8785)
carries no larger integer, and the checks go into it with the release."""

Count = Annotated[int, Field(ge=1, le=MAX_COUNT), WHOLE]
"""A size or row count a check names (at least 1; ``None`` turns the check off)."""

Suffix = Annotated[str, WithJsonSchema({"type": "string", "pattern": f"^{_SUFFIX.pattern}$"})]
"""A file type as a suffix (``.skops``); ``OutputChecks`` checks it and says why not."""
_SHOWN_NAMES = 5

_ROW_LIKE_NAMES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("an SSN-like number", re.compile(r"(?<!\d)\d{3}[-_.]?\d{2}[-_.]?\d{4}(?!\d)")),
    ("a phone-like number", re.compile(r"(?<!\d)\d{3}[-_.]\d{3}[-_.]\d{4}(?!\d)")),
    ("a long number, like an identifier", re.compile(r"\d{6,}")),
    (
        "an e-mail or web address",
        re.compile(r"(_at_|[a-z0-9-]\.(com|org|net|edu|gov|io|info|co|uk|de|fr|nl)\b)", re.I),
    ),
    (
        "a personal field",
        re.compile(
            r"(^|[_.-])(ssn|email|e-mail|dob|birth|birthdate|phone|address|zip|postcode|"
            r"surname|firstname|lastname|fullname|mrn|nhs|passport)([_.-]|$)",
            re.I,
        ),
    ),
)
_COUNT_LIKE = re.compile(
    r"(^|[_.-])(n|num|count|counts|rows|cases|samples|support|size|freq|frequency|"
    r"tp|fp|tn|fn|positives|negatives)([_.-]|$)",
    re.I,
)
_FREE_TEXT_WORDS = 6
_FREE_TEXT_CHARS = 48


class OutputChecks(BaseModel):
    """The automatic output checks an owner set on a dataset (``None`` or ``0``: off).

    ``file_types`` are suffixes such as ``.skops``; ``None`` allows any.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    file_types: list[Suffix] | None = None
    max_file_bytes: Count | None = None
    metric_names: bool = True
    min_cell: Whole = Field(default=DEFAULT_MIN_CELL, ge=0, le=1_000_000)
    max_rows: Count | None = DEFAULT_MAX_ROWS

    @field_validator("file_types")
    @classmethod
    def _suffixes(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        bad = [s for s in value if not _SUFFIX.fullmatch(s)]
        if bad:
            raise ValueError(
                f"file types are suffixes such as .skops or .json; not a suffix: "
                f"{', '.join(ascii(s) for s in bad[:_SHOWN_NAMES])}"
            )
        return sorted({s.lower() for s in value})


class CheckResult(BaseModel):
    """One check's verdict on a run's outputs; ``detail`` says what failed, escaped."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    check: CheckName
    passed: bool
    detail: str = Field(default="", max_length=MAX_DETAIL_CHARS)


@dataclass(frozen=True)
class OutputFacts:
    """What the data host read of one collected output: its name, size and, for a text or
    tabular file, its number of lines (``None`` for any other file)."""

    name: str
    bytes: int
    rows: int | None = None


def counts_rows(name: str) -> bool:
    """Whether ``max_rows`` counts the lines of the output ``name``."""
    return name.lower().endswith(ROW_SUFFIXES)


def _shown(item: str) -> str:
    """A job-chosen name as it may be shown: escaped (``ascii``) and bounded."""
    text = ascii(item)[1:-1]
    return one_line(text if len(text) <= 80 else text[:80] + "...")


def _result(check: CheckName, problems: Sequence[str], what: str) -> CheckResult:
    if not problems:
        return CheckResult(check=check, passed=True)
    detail = f"{what}: {', '.join(_shown(p) for p in problems[:_SHOWN_NAMES])}"
    if len(problems) > _SHOWN_NAMES:
        detail += f" and {len(problems) - _SHOWN_NAMES} more"
    if len(detail) > MAX_DETAIL_CHARS:
        detail = detail[: MAX_DETAIL_CHARS - 3] + "..."
    return CheckResult(check=check, passed=False, detail=detail)


def row_like_name(name: str) -> str | None:
    """Why the metric name ``name`` looks like row-level data, or ``None`` when it does not."""
    for why, pattern in _ROW_LIKE_NAMES:
        if pattern.search(name):
            return why
    words = [w for w in re.split(r"[_.\-]+", name) if w]
    if len(name) > _FREE_TEXT_CHARS or len(words) > _FREE_TEXT_WORDS:
        return "long free text"
    return None


def row_like_value(value: float) -> str | None:
    """Why the metric value looks like row-level data, or ``None`` when it does not."""
    if not math.isfinite(value):
        return "not a finite number"
    if value == int(value) and abs(value) >= 100_000_000:
        return "an integer of nine digits or more, like an identifier"
    return None


def count_like(name: str) -> bool:
    """Whether the metric ``name`` reads as a count of records (``n_test``, ``rows``...)."""
    return bool(_COUNT_LIKE.search(name))


def run_checks(
    checks: OutputChecks, outputs: Sequence[OutputFacts], metrics: Mapping[str, float]
) -> list[CheckResult]:
    """Every check's result on a run's ``outputs`` and ``metrics``, in a fixed order."""
    results = []
    if checks.file_types is not None:
        allowed = tuple(checks.file_types)
        wrong = [
            o.name
            for o in outputs
            if o.name not in ALWAYS_ALLOWED and not o.name.lower().endswith(allowed)
        ]
        results.append(
            _result("file_types", wrong, f"not of the allowed types ({', '.join(allowed)})")
        )
    if checks.max_file_bytes is not None:
        limit = checks.max_file_bytes
        big = [f"{o.name} ({o.bytes} bytes)" for o in outputs if o.bytes > limit]
        results.append(_result("file_size", big, f"larger than {limit} bytes"))
    if checks.metric_names:
        names = [f"{k} ({why})" for k in sorted(metrics) if (why := row_like_name(k))]
        results.append(_result("metric_names", names, "metric names that look like row data"))
    values = [f"{k} ({why})" for k in sorted(metrics) if (why := row_like_value(metrics[k]))]
    results.append(_result("metric_values", values, "metric values that look like row data"))
    if checks.min_cell:
        low = [
            f"{k} = {metrics[k]:g}"
            for k in sorted(metrics)
            if count_like(k) and math.isfinite(metrics[k]) and 0 < metrics[k] < checks.min_cell
        ]
        results.append(_result("min_cell", low, f"counts below the minimum of {checks.min_cell}"))
    if checks.max_rows is not None:
        limit = checks.max_rows
        long = [f"{o.name} ({o.rows} lines)" for o in outputs if (o.rows or 0) > limit]
        results.append(_result("max_rows", long, f"more than {limit} lines"))
    return results


def failed(results: Sequence[CheckResult]) -> list[CheckResult]:
    """The results that did not pass."""
    return [r for r in results if not r.passed]


def summary(results: Sequence[CheckResult]) -> str:
    """One line for people: ``all 5 checks passed`` or ``2 of 5 checks failed: ...``."""
    bad = failed(results)
    if not bad:
        return f"all {len(results)} checks passed"
    return f"{len(bad)} of {len(results)} checks failed: {', '.join(r.check for r in bad)}"


def release_body(results: Sequence[CheckResult]) -> dict[str, Any]:
    """What ``job.released`` says of the checks: each check's name and verdict, and the digest
    of the full results (their details name outputs and metrics, which every reader of the
    ledger must not see; the researcher checks them against the outcome once released)."""
    return {
        "checks": [{"check": r.check, "passed": r.passed} for r in results],
        "checks_digest": canonical_digest([r.model_dump(mode="json") for r in results]),
    }
