"""Human sizes and durations: parsing, printing and the round trip between them."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobs.units import describe_size, format_duration, format_size, parse_duration, parse_size

KiB, MiB, GiB = 1024, 1024**2, 1024**3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("512MiB", 512 * MiB),
        ("1GiB", GiB),
        ("1gib", GiB),
        ("1 GiB", GiB),
        ("100MB", 100_000_000),
        ("1.5GiB", 3 * GiB // 2),
        ("2048", 2048),
        ("2048B", 2048),
        ("0", 0),
        ("3KB", 3000),
        ("2TiB", 2 * 1024**4),
        (4096, 4096),
    ],
)
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    "text", ["", "GiB", "1 gigabyte", "-1MiB", "1.5", "0.1KiB", "1e3", "1GiB2", True, 1.5, -3]
)
def test_parse_size_refuses_what_it_cannot_read(text):
    with pytest.raises(ValueError, match=r"size|bytes|unit"):
        parse_size(text)


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0B"),
        (1, "1B"),
        (GiB, "1GiB"),
        (512 * MiB, "512MiB"),
        (100_000_000, "100MB"),
        (1536, "1536B"),
        (3 * KiB, "3KiB"),
        (1000, "1KB"),
        (5 * 10**12, "5TB"),
        (1024_000, "1000KiB"),
    ],
)
def test_format_size(n, text):
    assert format_size(n) == text


@given(st.integers(min_value=0, max_value=2**50))
def test_size_round_trip(n):
    assert parse_size(format_size(n)) == n


@pytest.mark.parametrize("text", ["512MiB", "1GiB", "100MB", "7B", "3KiB", "5TB"])
def test_size_text_round_trip(text):
    assert format_size(parse_size(text)) == text


def test_describe_size_is_approximate_and_readable():
    assert describe_size(10) == "10 B"
    assert describe_size(1234567) == "1.2 MiB"
    assert describe_size(3 * GiB) == "3.0 GiB"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", 90),
        ("10m", 600),
        ("1h30m", 5400),
        ("1h", 3600),
        ("2d", 172800),
        ("1d2h3m4s", 93784),
        ("600", 600),
        (" 1H 30M ", 5400),
        (42, 42),
        ("0s", 0),
    ],
)
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "m", "30m1h", "1.5h", "10 minutes", "1h1h", "-5", True, 2.5])
def test_parse_duration_refuses_what_it_cannot_read(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (90, "1m30s"), (600, "10m"), (5400, "1h30m"), (86401, "1d1s")]
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


@given(st.integers(min_value=0, max_value=10**9))
def test_duration_round_trip(seconds):
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("text", ["10m", "1h30m", "2d", "1m30s"])
def test_duration_text_round_trip(text):
    assert format_duration(parse_duration(text)) == text


def test_negative_values_are_refused_when_formatting():
    with pytest.raises(ValueError, match="negative"):
        format_size(-1)
    with pytest.raises(ValueError, match="negative"):
        format_duration(-1)
