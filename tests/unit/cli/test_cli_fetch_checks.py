"""The checks `c2d fetch` makes before any file gets its final name."""

from __future__ import annotations

import pytest
from cli_ledger_fixture import SmallLog

from jobs.digests import canonical_digest
from ledger import verify_receipt
from runner.cli.fetch import agreed_outputs, check_metrics
from runner.errors import IntegrityError
from runner.ledger_client import finished_outputs

A, B = "sha256:" + "a" * 64, "sha256:" + "b" * 64


def test_the_receipts_finished_entry_gives_the_output_digests(small_log: SmallLog) -> None:
    check = verify_receipt(small_log.ledger.receipt("job-1"), small_log.key)
    assert finished_outputs(check, "job-1") == {"model.skops": A, "metrics.json": B}


def test_a_receipt_about_another_job_is_refused(small_log: SmallLog) -> None:
    check = verify_receipt(small_log.ledger.receipt("job-1"), small_log.key)
    with pytest.raises(IntegrityError, match="not job job-9"):
        finished_outputs(check, "job-9")


def test_a_receipt_without_a_finished_entry_is_refused(small_log: SmallLog) -> None:
    check = verify_receipt(small_log.ledger.receipt("job-2"), small_log.key)
    with pytest.raises(IntegrityError, match=r"0 job\.finished"):
        finished_outputs(check, "job-2")


def test_three_agreeing_records_give_the_digests_in_one_form() -> None:
    got = agreed_outputs(
        "j", {"m": A}, {"m": "a" * 64}, {"m": A.upper().replace("SHA256", "sha256")}
    )
    assert got == {"m": "a" * 64}


@pytest.mark.parametrize(
    ("listed", "receipt", "named"),
    [
        ({"m": B}, {"m": A}, "artifact list"),
        ({"m": A}, {"m": B}, "receipt"),
        ({"m": A, "extra": A}, {"m": A}, "artifact list"),
        ({"m": A}, {}, "receipt"),
    ],
)
def test_any_disagreement_is_refused_naming_who_disagrees(
    listed: dict[str, str], receipt: dict[str, str], named: str
) -> None:
    with pytest.raises(IntegrityError, match=named):
        agreed_outputs("j", {"m": A}, listed, receipt)


def test_metrics_must_hash_to_the_recorded_digest() -> None:
    metrics = {"accuracy": 0.9, "rows": 100}
    check_metrics(
        "j", metrics, {"metrics_digest": canonical_digest({"rows": 100.0, "accuracy": 0.9})}
    )
    with pytest.raises(IntegrityError, match="metrics"):
        check_metrics(
            "j", {"accuracy": 0.99, "rows": 100}, {"metrics_digest": canonical_digest(metrics)}
        )
    with pytest.raises(IntegrityError):
        check_metrics("j", None, {"metrics_digest": canonical_digest(metrics)})
    check_metrics("j", None, {"metrics_digest": canonical_digest({})})  # no metrics file
