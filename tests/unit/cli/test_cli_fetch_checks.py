"""The checks `c2d fetch` makes before any file gets its final name."""

from __future__ import annotations

import pytest
from cli_ledger_fixture import SmallLog
from conftest import OUTPUTS

from jobs.digests import canonical_digest, outputs_digest
from ledger import verify_receipt
from runner.client.ledger_check import finished_outputs_digest
from runner.client.verify import agreed_outputs, check_metrics
from runner.errors import IntegrityError

A, B = "sha256:" + "a" * 64, "sha256:" + "b" * 64
ROWS = [{"name": "m", "sha256": A, "bytes": 3}]


def test_the_receipts_finished_entry_gives_the_outputs_digest(small_log: SmallLog) -> None:
    check = verify_receipt(small_log.ledger.receipt("job-1"), small_log.key)
    assert finished_outputs_digest(check, "job-1") == outputs_digest(OUTPUTS)


def test_a_receipt_about_another_job_is_refused(small_log: SmallLog) -> None:
    check = verify_receipt(small_log.ledger.receipt("job-1"), small_log.key)
    with pytest.raises(IntegrityError, match="not job job-9"):
        finished_outputs_digest(check, "job-9")


def test_a_receipt_without_a_finished_entry_is_refused(small_log: SmallLog) -> None:
    check = verify_receipt(small_log.ledger.receipt("job-2"), small_log.key)
    with pytest.raises(IntegrityError, match=r"0 job\.finished"):
        finished_outputs_digest(check, "job-2")


def test_agreeing_records_give_the_digests_in_one_form() -> None:
    listed = [{"name": "m", "sha256": "a" * 64, "bytes": 3}]
    assert agreed_outputs("j", ROWS, listed, outputs_digest(ROWS)) == {"m": "a" * 64}


@pytest.mark.parametrize(
    ("outcome", "listed", "named"),
    [
        (ROWS, [{"name": "m", "sha256": B, "bytes": 3}], "artifact list"),
        (ROWS, [*ROWS, {"name": "extra", "sha256": A, "bytes": 3}], "artifact list"),
        ([{"name": "m", "sha256": B, "bytes": 3}], ROWS, "outputs digest"),
        ([{"name": "m", "sha256": A, "bytes": 4}], ROWS, "outputs digest"),  # a size changed
        ([{"name": "n", "sha256": A, "bytes": 3}], ROWS, "outputs digest"),  # a name changed
        ([{"sha256": A}], ROWS, "names, digests and sizes"),
    ],
)
def test_any_disagreement_is_refused_naming_who_disagrees(
    outcome: list[dict[str, object]], listed: list[dict[str, object]], named: str
) -> None:
    with pytest.raises(IntegrityError, match=named):
        agreed_outputs("j", outcome, listed, outputs_digest(ROWS))


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
