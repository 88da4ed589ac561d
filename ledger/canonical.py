"""RFC 8785 canonical JSON, the ``rfc8785`` package's bytes at the C encoder's speed.

Every hashed or signed byte string in the ledger is the RFC 8785 encoding of a JSON value.
``rfc8785.dumps`` is pure Python (a regex and a buffer write per string) and was most of a
receipt check's cost outside its signatures. :func:`dumps` returns the same bytes, always:

- For values whose encoding cannot differ between the two, it uses the standard library's C
  encoder (sorted keys, no spaces, UTF-8 as is). Such a value holds only ``dict`` (string
  keys), ``list``, ``str``, ``bool``, ``None`` and ``int`` within RFC 8785's +-(2^53-1), all of
  exactly those types, and no character outside the Basic Multilingual Plane: for these both
  encoders write the same literals, the same string escapes (``\\b \\f \\n \\r \\t``, ``\\uXXXX``
  in lower case for the other control characters, ``\\"`` and ``\\\\``, nothing else), and
  sort keys the same way (code points and UTF-16 code units order BMP text alike).
- Anything else (floats, which RFC 8785 writes the ECMAScript way; integers out of range;
  non-BMP characters, which UTF-16 sorts differently; lone surrogates; subclasses; tuples) goes
  to ``rfc8785.dumps``, which encodes it or raises exactly as before.

``tests/unit/ledger/test_ledger_canonical.py`` checks the two agree on generated values.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

INT_MAX = 2**53 - 1
"""The largest integer magnitude RFC 8785 encodes (``rfc8785`` refuses larger ones)."""

_ENCODER = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":")
)
# The C encoder behind ``_ENCODER.encode``, made once: ``encode`` builds a new one per call,
# a third of the cost for a ledger entry. Without cycle detection (``markers=None``), which
# neither a parsed document nor a value ``_plain`` walked to its leaves can hold.
_C_ITER = getattr(json.encoder, "c_make_encoder", None)
_C_ITER = _C_ITER and _C_ITER(
    None, None, json.encoder.encode_basestring, None, ":", ",", True, False, False
)


def _c_encode(value: Any) -> str:
    return "".join(_C_ITER(value, 0)) if _C_ITER else _ENCODER.encode(value)


def _bmp_only(data: bytes) -> bool:
    """Whether UTF-8 ``data`` has no four-byte sequence (lead bytes 0xF0-0xF4), so no
    character outside the BMP. ASCII, the common case, is answered at memory speed: a regex
    search took as long as encoding the entry."""
    return data.isascii() or max(data) < 0xF0


class _NotPlain(Exception):
    """A parsed number the C encoder would not write as RFC 8785 does."""


def _no_float(text: str) -> Any:
    raise _NotPlain(text)


def _safe_int(text: str) -> int:
    value = int(text)
    if not -INT_MAX <= value <= INT_MAX:
        raise _NotPlain(text)
    return value


_PLAIN_DECODE = json.JSONDecoder(
    parse_float=_no_float, parse_int=_safe_int, parse_constant=_no_float
).decode


def dumps(value: Any) -> bytes:
    """The RFC 8785 bytes of ``value``; raises what ``rfc8785.dumps`` raises for it."""
    if _plain(value):
        try:
            data = _c_encode(value).encode()
        except UnicodeEncodeError:
            pass  # a lone surrogate: rfc8785 refuses it with its own error
        else:
            if _bmp_only(data):
                return data
    return rfc8785.dumps(value)


def _plain(value: Any) -> bool:
    """Whether ``value`` holds only what both encoders write identically (module doc)."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return -INT_MAX <= value <= INT_MAX
    if kind is dict:
        return all(type(k) is str for k in value) and all(map(_plain, value.values()))
    if kind is list:
        return all(map(_plain, value))
    return False


def loads_proven(data: bytes) -> tuple[bool, Any]:
    """``(True, value)`` when ``data`` is shown to be exactly the RFC 8785 encoding of the
    ``value`` it parses to, checked in one parse and one encode; ``(False, None)`` when this
    route cannot tell, and the caller must parse and compare with :func:`dumps`.

    The route takes UTF-8 text with no float, no NaN or Infinity, no integer outside
    +-(2^53-1) and no character outside the BMP: what the parser returns is then plain
    (module doc), so the C encoder's bytes are rfc8785's and equal bytes prove ``data``
    canonical. Everything else (and every mismatch) falls to the caller's full check.
    """
    try:
        value = _PLAIN_DECODE(data.decode())
        if _bmp_only(data) and _c_encode(value).encode() == data:
            return True, value
    except (ValueError, _NotPlain):  # not UTF-8, not JSON, a number or a lone surrogate
        pass
    return False, None
