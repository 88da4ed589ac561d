"""ledger.canonical: the same bytes as rfc8785, or the same refusal, for every value."""

from __future__ import annotations

import json
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import canonical

# Text that reaches every branch: control characters, quotes and backslashes, DEL, U+2028,
# characters either side of the surrogate block (which UTF-16 sorts differently), emoji,
# and lone surrogates (which neither encoder may write).
_chars = st.one_of(
    st.characters(min_codepoint=0, max_codepoint=0x7F),
    st.sampled_from(["\u2028", "\ud7ff", "\ue000", "\uffff", "\U0001f600", "\U00010000", "é"]),
    st.characters(blacklist_categories=()),
)
_text = st.text(_chars, max_size=8)
_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**54), 2**54)
    | st.floats(allow_nan=True, allow_infinity=True)
    | _text,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(_text, inner, max_size=4)
        | st.tuples(inner, inner)
    ),
    max_leaves=16,
)


def _either(encode: Any, value: Any) -> tuple[str, Any]:
    try:
        return "bytes", encode(value)
    except Exception as exc:  # rfc8785 raises several types; compare which one
        return "raised", type(exc)


@settings(max_examples=600, deadline=None)
@given(_values)
def test_dumps_gives_rfc8785s_bytes_or_its_error(value: Any) -> None:
    assert _either(canonical.dumps, value) == _either(rfc8785.dumps, value)


@pytest.mark.parametrize(
    "value",
    [
        {"\ue000": 1, "\U0001f600": 2},  # code point order and UTF-16 order disagree
        {"n": 2**53 - 1, "m": -(2**53) + 1},
        {"n": 2**53},
        {"f": 1.0, "g": 1e21, "h": -0.0, "i": 1e-7},
        {"s": '\x00\x1f"\\\x7f\u2028'},
        {"lone": "\ud800"},
        {1: "int key"},
        ("a", "tuple"),
        {"nested": [{"z": [], "a": {}}]},
    ],
)
def test_dumps_agrees_on_the_values_where_the_encoders_could_part(value: Any) -> None:
    assert _either(canonical.dumps, value) == _either(rfc8785.dumps, value)


class _Str(str):
    def __str__(self) -> str:
        return "something else"


def test_subclasses_go_to_rfc8785() -> None:
    value = {"k": _Str("v"), "b": True}
    assert canonical.dumps(value) == rfc8785.dumps(value)
    assert not canonical._plain(value)


def test_plain_values_take_the_c_encoder() -> None:
    # The fast path is the point of the module: a signed entry's body must take it.
    body = {"signed": {"statement": {"type": "c2d/submit", "version": 1}, "key": "ed25519:ab"}}
    assert canonical._plain(body)
    assert canonical.dumps(body) == json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def _rfc8785_says_canonical(data: bytes) -> bool:
    try:
        return rfc8785.dumps(json.loads(data)) == data
    except Exception:  # not JSON, or no RFC 8785 form
        return False


@settings(max_examples=600, deadline=None)
@given(_values, st.data())
def test_loads_proven_only_vouches_for_rfc8785s_own_bytes(value: Any, data: st.DataObject) -> None:
    try:
        encoded = rfc8785.dumps(value)
    except Exception:
        encoded = json.dumps(value, default=str).encode()
    if data.draw(st.booleans()) and encoded:  # sometimes one byte changed, as a forger might
        at = data.draw(st.integers(0, len(encoded) - 1))
        encoded = encoded[:at] + bytes([data.draw(st.integers(0, 255))]) + encoded[at + 1 :]
    proven, parsed = canonical.loads_proven(encoded)
    if proven:
        assert _rfc8785_says_canonical(encoded)
        assert parsed == json.loads(encoded)


@pytest.mark.parametrize(
    "value",
    [{"a": [1, -2, True, None, "é\u2028\x01"], "b": {}}, "text", 0, [], {"n": 2**53 - 1}],
)
def test_loads_proven_takes_plain_canonical_bytes(value: Any) -> None:
    assert canonical.loads_proven(rfc8785.dumps(value)) == (True, value)


@pytest.mark.parametrize(
    "data",
    [b'{"x":1.5}', b'{"x":9007199254740992}', '{"\U0001f600":1}'.encode(), b"NaN", b"\xff"],
)
def test_loads_proven_leaves_the_rest_to_the_full_check(data: bytes) -> None:
    assert canonical.loads_proven(data) == (False, None)
