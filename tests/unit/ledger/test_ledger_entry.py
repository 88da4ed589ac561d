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
