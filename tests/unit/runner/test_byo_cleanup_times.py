"""When an image was last touched, read from the engine's timestamps."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from runner.host.images.cleanup import engine_time, last_touched

NOON = datetime(2026, 1, 2, 12, 0, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2026-01-02T12:00:00Z", NOON),
        ("2026-01-02T12:00:00.123456789Z", NOON + 0.123456),
        ("2026-01-02T13:00:00.5+01:00", NOON + 0.5),
        ("2026-01-02T07:00:00-05:00", NOON),
        ("0001-01-01T00:00:00Z", 0.0),  # the engine's "never"
        ("", 0.0),
        ("yesterday", 0.0),
        (None, 0.0),
    ],
)
def test_engine_time(stamp: object, expected: float) -> None:
    assert engine_time(stamp) == pytest.approx(expected, abs=1e-6)


def test_last_touched_is_the_later_of_creation_and_last_tag() -> None:
    created = "2026-01-02T12:00:00Z"
    tagged = "2026-01-02T14:00:00Z"
    assert last_touched({"Created": created, "Metadata": {"LastTagTime": tagged}}) == NOON + 7200
    assert last_touched({"Created": tagged, "Metadata": {"LastTagTime": created}}) == NOON + 7200
    assert last_touched({"Created": created, "Metadata": {}}) == NOON
