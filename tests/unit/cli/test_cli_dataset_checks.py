"""The output checks' options on the command line and how their results are shown."""

import pytest
import typer

from jobs.output_checks import OutputChecks
from runner.cli.dataset_checks import check_rows, describe_checks, merged_checks

DEFAULTS = OutputChecks().model_dump(mode="json")


def test_options_not_given_leave_the_checks_as_they_are():
    assert merged_checks(DEFAULTS, None, None, None, None, None) == DEFAULTS


def test_each_option_changes_its_setting_and_zero_turns_limits_off():
    merged = merged_checks(DEFAULTS, "skops, .json", "20MiB", False, 0, 0)
    assert merged == {
        "file_types": [".skops", ".json"],
        "max_file_bytes": 20 * 2**20,
        "metric_names": False,
        "min_cell": 0,
        "max_rows": None,
    }
    assert OutputChecks.model_validate(merged).file_types == [".json", ".skops"]
    assert merged_checks(merged, "any", "0", None, None, None)["file_types"] is None


@pytest.mark.parametrize(("types", "size"), [(",", None), (None, "ten megs")])
def test_bad_values_are_usage_errors_that_say_what_is_allowed(types, size):
    with pytest.raises(typer.BadParameter):
        merged_checks(DEFAULTS, types, size, None, None, None)


def test_settings_and_results_read_plainly():
    assert describe_checks(DEFAULTS) == [
        "file types        any",
        "largest file      no limit beyond the job",
        "metric names      checked",
        "min cell size     10",
        "most lines        1000",
    ]
    assert check_rows([]) == []
    assert check_rows([{"check": "min_cell", "passed": True}]) == [("checks", "all 1 passed")]
    failed = [{"check": "max_rows", "passed": False, "detail": "more than 10 lines: a.csv"}]
    assert check_rows(failed) == [
        ("checks", "1 of 1 FAILED (release needs --despite-checks)"),
        ("  max_rows", "more than 10 lines: a.csv"),
    ]
