"""Entries: validation, canonical bytes and their hashes."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import BadEntry, Entry
from ledger.entry import GENESIS_PREV
from ledger.merkle import leaf_hash

TIME = "2025-01-01T00:00:01.000000Z"


def fields(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "seq": 0,
        "prev": GENESIS_PREV,
        "time": TIME,
        "type": "job.submitted",
        "actor": "alice",
        "subject": "job-1",
        "body": {"code_digest": "sha256:" + "ab" * 32, "cpus": 2},
    }
    return base | changes


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(min_value=-1e15, max_value=1e15)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(
    actor=st.text(
        st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\x7f"),
        min_size=1,
        max_size=30,
    ),
    body=st.dictionaries(st.text(), json_values, max_size=5),
    seq=st.integers(0, 2**53 - 1),
)
def test_canonical_bytes_are_exactly_rfc8785_of_the_entry(
    actor: str, body: dict[str, Any], seq: int
) -> None:
    entry = Entry.create(**fields(actor=actor, subject=actor, body=body, seq=seq))
    whole = fields(actor=actor, subject=actor, body=body, seq=seq)
    assert entry.canonical_bytes() == rfc8785.dumps(whole)
    assert Entry.from_canonical(entry.canonical_bytes()) == entry


def test_hash_and_leaf_hash_cover_the_canonical_bytes() -> None:
    entry = Entry.create(**fields())
    data = entry.canonical_bytes()
    assert data.startswith(b'{"actor":"alice","body":{"code_digest"')
    assert entry.hash == hashlib.sha256(data).digest()
    assert entry.leaf_hash == leaf_hash(data) == hashlib.sha256(b"\x00" + data).digest()


def test_body_is_what_was_hashed_not_the_callers_dict() -> None:
    body: dict[str, Any] = {"x": [1, 2], "f": 1.0}
    entry = Entry.create(**fields(body=body))
    body["x"].append(3)
    assert entry.body == {"x": [1, 2], "f": 1}
    assert json.loads(entry.canonical_bytes())["body"] == entry.body


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"type": "Job.Submitted"}, "type"),
        ({"type": "submitted"}, "type"),
        ({"type": "job..x"}, "type"),
        ({"time": "2025-01-01T00:00:00+01:00"}, "time"),
        ({"time": "2025-13-01T00:00:00Z"}, "month"),
        ({"prev": "0" * 63}, "prev"),
        ({"prev": "G" * 64}, "prev"),
        ({"seq": -1}, "seq"),
        ({"seq": True}, "seq"),
        ({"seq": 2**53}, "seq"),
        ({"actor": ""}, "actor"),
        ({"subject": "job\n1"}, "subject"),
        ({"body": ["not", "an", "object"]}, "body"),
        ({"body": {"x": float("nan")}}, "canonical JSON"),
        ({"body": {"x": 2**60}}, "canonical JSON"),
        ({"body": {1: "non-string key"}}, "body"),
    ],
)
def test_bad_fields_are_refused_with_the_field_named(
    change: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(BadEntry, match=complaint) as caught:
        Entry.create(**fields(**change))
    assert caught.value.kind == "invalid"


def test_non_canonical_bytes_are_refused() -> None:
    data = Entry.create(**fields()).canonical_bytes()
    spaced = json.dumps(json.loads(data), indent=1).encode()
    with pytest.raises(BadEntry, match="canonical"):
        Entry.from_canonical(spaced)
    duplicated = data.replace(b'{"actor":"alice",', b'{"actor":"mallory","actor":"alice",')
    with pytest.raises(BadEntry, match="canonical"):
        Entry.from_canonical(duplicated)


def _canonical_with(body_json: bytes) -> bytes:
    """An entry's bytes with ``body_json`` spliced in as its body, as a forger would."""
    data = Entry.create(**fields(body={"x": 0})).canonical_bytes()
    return data.replace(b'"body":{"x":0}', b'"body":' + body_json)


@pytest.mark.parametrize(
    ("body_json", "complaint"),
    [
        (b'{"x":1.0}', "canonical form"),  # RFC 8785 writes 1
        (b'{"x":1e+20}', "canonical form"),  # and 1e20 in full
        (b'{"x":NaN}', "cannot be encoded"),  # Python's parser reads it, RFC 8785 has none
        (b'{"x":Infinity}', "cannot be encoded"),
        (b'{"x":9007199254740992}', "cannot be encoded"),  # 2^53, past exact integers
        (b'{"x":"\\u00e9"}', "canonical form"),  # é must be written as UTF-8
        (b'{"x":"\\ud83d\\ude00"}', "canonical form"),  # and so must an emoji
        (b'{"x":"\\ud800"}', "cannot be encoded"),  # a lone surrogate has no UTF-8
        (b'{"x":"\\u001F"}', "canonical form"),  # escapes are lower case
        (b'{"x":"\\/"}', "canonical form"),
        ('{"\ue000":1,"\U0001f600":2}'.encode(), "canonical form"),  # UTF-16 key order
        (b'{"b":1,"a":2}', "canonical form"),
        (b'{"x":0,"x":0}', "canonical form"),
    ],
)
def test_bytes_that_parse_but_are_not_rfc8785_are_refused(body_json: bytes, complaint: str) -> None:
    with pytest.raises(BadEntry, match=complaint):
        Entry.from_canonical(_canonical_with(body_json))


@pytest.mark.parametrize(
    "body",
    [
        {"x": 1.5, "y": 1e21, "z": 1e-7},
        {"\U0001f600": 2, "\ue000": 1, "é": "\x7f\u2028"},
        {"n": 2**53 - 1, "m": -(2**53) + 1, "c": '\x00\x1f"\\'},
    ],
)
def test_canonical_bytes_outside_the_fast_route_still_parse(body: dict[str, Any]) -> None:
    entry = Entry.create(**fields(body=body))
    assert Entry.from_canonical(entry.canonical_bytes()) == entry


def test_other_encodings_of_the_same_json_are_refused() -> None:
    data = Entry.create(**fields()).canonical_bytes()
    for other in (b"\xef\xbb\xbf" + data, data.decode().encode("utf-16")):
        with pytest.raises(BadEntry):
            Entry.from_canonical(other)


@pytest.mark.parametrize(
    "data",
    [b"not json", b"[1, 2]", b'{"seq": 0}', b"\xff\xfe", json.dumps(fields(extra=1)).encode()],
)
def test_bytes_that_are_not_an_entry_are_refused(data: bytes) -> None:
    with pytest.raises(BadEntry):
        Entry.from_canonical(data)


def test_entries_are_frozen() -> None:
    entry = Entry.create(**fields())
    with pytest.raises(ValueError, match="frozen"):
        entry.seq = 5  # type: ignore[misc]
