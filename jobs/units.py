"""Human sizes and durations, parsed and printed both ways.

Sizes: ``512MiB``, ``1GiB``, ``100MB``, ``1.5GiB``, ``2048`` (bytes) or ``2048B``. Binary units
(KiB, MiB, GiB, TiB) are powers of 1024, decimal ones (KB, MB, GB, TB) powers of 1000; unit
names are case-insensitive and a space before the unit is allowed. A size must come to a whole
number of bytes.

Durations: ``90s``, ``10m``, ``1h30m``, ``2d``, or a plain number of seconds. Parts go from
largest to smallest unit, each at most once. A duration is a whole number of seconds.

``format_size`` and ``format_duration`` print the exact canonical form, so that
``parse_size(format_size(n)) == n`` and ``parse_duration(format_duration(s)) == s``.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

SIZE_HELP = "a size like 512MiB, 1GiB, 100MB or a whole number of bytes"
DURATION_HELP = "a duration like 90s, 10m, 1h30m or a whole number of seconds"

_SIZE_UNITS: dict[str, int] = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_BINARY = (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024))
_DECIMAL = (("TB", 1000**4), ("GB", 1000**3), ("MB", 1000**2), ("KB", 1000))

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")

_DURATION_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
_DURATION_RE = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_size(text: str | int) -> int:
    """Return the number of bytes ``text`` names; raise ``ValueError`` saying what is allowed."""
    if isinstance(text, bool):
        raise ValueError(f"expected {SIZE_HELP}, got {text!r}")
    if isinstance(text, int):
        if text < 0:
            raise ValueError(f"a size cannot be negative, got {text}")
        return text
    if not isinstance(text, str):
        raise ValueError(f"expected {SIZE_HELP}, got {text!r}")
    match = _SIZE_RE.match(text)
    if not match:
        raise ValueError(f"expected {SIZE_HELP}, got {text!r}")
    number, unit = match.groups()
    factor = _SIZE_UNITS.get(unit.lower())
    if factor is None:
        raise ValueError(
            f"unknown size unit {unit!r} in {text!r}; use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB"
        )
    try:
        value = Decimal(number) * factor
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only decimals
        raise ValueError(f"expected {SIZE_HELP}, got {text!r}") from exc
    if value != value.to_integral_value():
        raise ValueError(f"{text!r} is not a whole number of bytes")
    return int(value)


def format_size(n: int) -> str:
    """Print ``n`` bytes exactly, in the unit giving the smallest whole count (``1GiB``)."""
    if n < 0:
        raise ValueError(f"a size cannot be negative, got {n}")
    if n == 0:
        return "0B"
    exact = [(n // factor, name) for name, factor in _BINARY + _DECIMAL if n % factor == 0]
    if not exact:
        return f"{n}B"
    count, name = min(exact)
    return f"{count}{name}"


def describe_size(n: int) -> str:
    """Print ``n`` bytes approximately for people (``1.2 MiB``); not meant to be parsed back."""
    if n < 1024:
        return f"{n} B"
    for name, factor in _BINARY:
        if n >= factor:
            return f"{n / factor:.1f} {name}"
    raise AssertionError("unreachable")  # pragma: no cover


def parse_duration(text: str | int) -> int:
    """Return the number of seconds ``text`` names; raise ``ValueError`` saying what is allowed."""
    if isinstance(text, bool):
        raise ValueError(f"expected {DURATION_HELP}, got {text!r}")
    if isinstance(text, int):
        if text < 0:
            raise ValueError(f"a duration cannot be negative, got {text}")
        return text
    if not isinstance(text, str):
        raise ValueError(f"expected {DURATION_HELP}, got {text!r}")
    compact = text.strip().lower().replace(" ", "")
    if compact.isdigit():
        return int(compact)
    match = _DURATION_RE.match(compact)
    if not compact or not match:
        raise ValueError(f"expected {DURATION_HELP}, got {text!r}")
    return sum(
        int(part) * factor
        for part, (_, factor) in zip(match.groups(), _DURATION_UNITS, strict=True)
        if part is not None
    )


def format_duration(seconds: int) -> str:
    """Print whole ``seconds`` canonically (``1h30m``, ``90`` -> ``1m30s``, ``0`` -> ``0s``)."""
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {seconds}")
    if seconds == 0:
        return "0s"
    parts = []
    rest = seconds
    for name, factor in _DURATION_UNITS:
        count, rest = divmod(rest, factor)
        if count:
            parts.append(f"{count}{name}")
    return "".join(parts)
