"""The automatic output checks (``jobs.output_checks``): each check, hostile names and values,
and what the service does with their results (held, shown to the owner only, in the ledger)."""

import json
import math
import sqlite3

import pytest
from pydantic import ValidationError

from jobs.digests import canonical_digest
from jobs.errors import Conflict
from jobs.output_checks import (
    CheckResult,
    OutputChecks,
    OutputFacts,
    count_like,
    failed,
    row_like_name,
    row_like_value,
    run_checks,
    summary,
)
from jobs.states import JobState
from tests.kit.worlds import build_world, ok_outcome

MODEL = OutputFacts("model.skops", 5000)


def by_check(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.check: r for r in results}


def test_defaults_pass_an_ordinary_run():
    results = run_checks(
        OutputChecks(), [MODEL, OutputFacts("metrics.json", 80)], {"accuracy": 0.9, "n": 1250}
    )
    assert [r.check for r in results] == ["metric_names", "metric_values", "min_cell", "max_rows"]
    assert not failed(results)
    assert summary(results) == "all 4 checks passed"


def test_file_types_allow_only_the_listed_suffixes_and_metrics_json():
    checks = OutputChecks(file_types=[".SKOPS", ".json"])
    assert checks.file_types == [".json", ".skops"]
    outputs = [MODEL, OutputFacts("metrics.json", 10), OutputFacts("rows.csv", 10)]
    result = by_check(run_checks(checks, outputs, {}))["file_types"]
    assert not result.passed
    assert "rows.csv" in result.detail
    assert "model.skops" not in result.detail


@pytest.mark.parametrize("bad", ["skops", "", ".", "../x", ".a b"])
def test_a_file_type_must_be_a_suffix(bad):
    with pytest.raises(ValidationError, match="suffixes such as"):
        OutputChecks(file_types=[bad])


def test_file_size_names_the_file_that_is_too_large():
    checks = OutputChecks(max_file_bytes=1000)
    results = by_check(run_checks(checks, [MODEL, OutputFacts("small.json", 999)], {}))
    assert not results["file_size"].passed
    assert "model.skops (5000 bytes)" in results["file_size"].detail
    assert "small.json" not in results["file_size"].detail


@pytest.mark.parametrize(
    "name",
    [
        "ssn_123-45-6789",
        "patient_123456789",
        "id_4711983",
        "call_555.123.4567",
        "john.doe_at_example.com",
        "jane.example.org",
        "email_of_top_patient",
        "dob",
        "the_patient_in_bed_four_said_she_was_fine",
        "x" * 49,
    ],
)
def test_metric_names_that_look_like_row_data_fail(name):
    assert row_like_name(name) is not None
    result = by_check(run_checks(OutputChecks(), [], {name: 0.5}))["metric_names"]
    assert not result.passed
    assert name[:40] in result.detail


@pytest.mark.parametrize(
    "name", ["accuracy", "roc_auc", "f1", "test_rows", "epoch_12", "loss.val", "r2_2024"]
)
def test_ordinary_metric_names_pass(name):
    assert row_like_name(name) is None


def test_metric_name_check_can_be_turned_off():
    results = run_checks(OutputChecks(metric_names=False), [], {"ssn_123456789": 1.0})
    assert "metric_names" not in by_check(results)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 123456789.0, -9876543210.0])
def test_metric_values_that_are_not_finite_or_look_like_identifiers_fail(value):
    assert row_like_value(value) is not None
    assert not by_check(run_checks(OutputChecks(), [], {"v": value}))["metric_values"].passed


@pytest.mark.parametrize("value", [0.0, 0.93, 1250.0, 99_999_999.0, 123456789.5])
def test_ordinary_metric_values_pass(value):
    assert row_like_value(value) is None


@pytest.mark.parametrize(
    ("metrics", "passed"),
    [
        ({"n": 3}, False),
        ({"test_rows": 9}, False),
        ({"tp": 1}, False),
        ({"count.positive": 4}, False),
        ({"n": 0}, True),  # an empty cell singles nobody out
        ({"n": 10}, True),
        ({"accuracy": 3}, True),  # not a count
    ],
)
def test_min_cell_flags_small_counts(metrics, passed):
    assert by_check(run_checks(OutputChecks(), [], metrics))["min_cell"].passed is passed


def test_min_cell_size_is_the_owners_and_can_be_off():
    assert not by_check(run_checks(OutputChecks(min_cell=50), [], {"n": 30}))["min_cell"].passed
    assert "min_cell" not in by_check(run_checks(OutputChecks(min_cell=0), [], {"n": 3}))


def test_count_like_names():
    assert all(count_like(n) for n in ["n", "n_train", "train_rows", "support", "num.cases"])
    assert not any(count_like(n) for n in ["accuracy", "nodes", "rowsum", "f1"])


def test_max_rows_counts_text_and_tabular_outputs_only():
    outputs = [OutputFacts("preds.csv", 10, rows=1001), OutputFacts("ok.tsv", 10, rows=1000)]
    result = by_check(run_checks(OutputChecks(), [*outputs, MODEL], {}))["max_rows"]
    assert not result.passed
    assert result.detail == "more than 1000 lines: preds.csv (1001 lines)"
    assert "max_rows" not in by_check(run_checks(OutputChecks(max_rows=None), outputs, {}))


def test_hostile_names_are_escaped_and_bounded_in_the_details():
    hostile = {f"ssn_{i:09d}\x1b[2J\u202e": 1.0 for i in range(50)}
    result = by_check(run_checks(OutputChecks(), [], hostile))["metric_names"]
    assert not result.passed
    assert "\x1b" not in result.detail
    assert "\u202e" not in result.detail
    assert "\\x1b" in result.detail
    assert result.detail.endswith("and 45 more")
    assert len(result.detail) <= 400
    huge = [OutputFacts("a" * 5000 + ".csv", 1, rows=10**6)]
    assert len(by_check(run_checks(OutputChecks(), huge, {}))["max_rows"].detail) <= 400


FAILING = [CheckResult(check="metric_names", passed=False, detail="ssn_123456789 (an SSN)")]


def test_a_failed_check_holds_a_release_on_success_dataset_and_hides_the_result(tmp_path):
    w = build_world(tmp_path, review_outputs=False)
    job = w.approved()
    claim = w.service.claim(job.id, "w1", 60)
    done = w.service.finish(job.id, claim.fence, ok_outcome(checks=FAILING))
    assert done.state is JobState.SUCCEEDED  # held, not released by the policy
    seen = w.service.get_job(w.rita, job.id)
    assert seen.outcome is None
    assert seen.withheld
    assert w.service.get_job(w.olga, job.id).outcome.checks == FAILING
    assert "job.released" not in w.types(job.id)


def test_release_after_a_failed_check_needs_the_owners_word_and_records_the_results(tmp_path):
    w = build_world(tmp_path, review_outputs=True)
    job = w.approved()
    claim = w.service.claim(job.id, "w1", 60)
    w.service.finish(job.id, claim.fence, ok_outcome(checks=FAILING))
    with pytest.raises(Conflict, match=r"metric_names: ssn_123456789.*--despite-checks"):
        w.service.release(w.olga, job.id)
    assert w.service.get_job(w.olga, job.id).state is JobState.SUCCEEDED
    released = w.service.release(w.olga, job.id, despite_checks=True)
    assert released.state is JobState.RELEASED
    entry = w.ledger.entries_for(job.id)[-1]
    assert entry.type == "job.released"
    # Names and verdicts, and the digest of the details: these name metrics, and every
    # signed-in user reads the ledger.
    assert entry.body == {
        "by_policy": False,
        "checks": [{"check": "metric_names", "passed": False}],
        "checks_digest": canonical_digest([FAILING[0].model_dump(mode="json")]),
        "despite_checks": True,
    }
    assert "ssn" not in str(entry.body)


def test_the_owner_changes_the_checks_and_the_ledger_says_so(tmp_path):
    w = build_world(tmp_path)
    with pytest.raises(Exception, match="only its owner or an admin"):
        w.service.set_checks(w.otto, "iris", OutputChecks(min_cell=0))
    dataset = w.service.set_checks(w.olga, "iris", OutputChecks(min_cell=20, max_rows=None))
    assert dataset.policy.checks == OutputChecks(min_cell=20, max_rows=None)
    assert w.service.get_dataset(w.rita, "iris").policy.checks.min_cell == 20
    entry = w.ledger.entries_for("dataset:iris")[-1]
    assert entry.type == "dataset.checks"
    assert entry.body["checks"]["min_cell"] == 20


def test_a_dataset_stored_before_the_new_default_keeps_its_policy(tmp_path):
    """No migration: the store always wrote ``review_outputs``, so a dataset registered to
    release on success (before ``checks`` existed) still does, with the default checks."""
    w = build_world(tmp_path, review_outputs=False)
    old = {
        "schema_version": 1,
        "owner": "olga",
        "review_outputs": False,
        "host": w.host.name,
        "max_metrics": 7,  # shows the policy below is the stored row's
    }
    conn = sqlite3.connect(tmp_path / "c2d.db")
    with conn:
        conn.execute("UPDATE datasets SET policy = ? WHERE name = 'iris'", (json.dumps(old),))
    conn.close()
    policy = w.service.get_dataset(w.olga, "iris").policy
    assert policy.max_metrics == 7
    assert policy.review_outputs is False
    assert policy.checks == OutputChecks()
