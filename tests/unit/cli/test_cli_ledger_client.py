"""verify_downloaded_log: a log fetched over HTTP is checked as thoroughly as a database file."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
import rfc8785
from cli_ledger_fixture import SmallLog

from ledger.keys import parse_public_key
from runner.client.ledger_check import read_public_key, verify_downloaded_log
from runner.errors import ClientConfigError, MissingFile


def _rewrite(data: bytes, **changes: object) -> bytes:
    obj = json.loads(data)
    obj.update(changes)
    return rfc8785.dumps(obj)


def test_an_untouched_log_verifies(small_log: SmallLog) -> None:
    report = verify_downloaded_log(
        small_log.entries, small_log.checkpoints, small_log.key, small_log.origin
    )
    assert report.ok, report.detail
    assert report.entries == 5
    assert report.root == small_log.ledger.root().hex()


def test_an_edited_entry_breaks_the_chain_before_any_checkpoint(small_log: SmallLog) -> None:
    entries = list(small_log.entries)
    entries[0] = _rewrite(entries[0], actor="mallory")
    report = verify_downloaded_log(entries, small_log.checkpoints, small_log.key)
    assert not report.ok
    # Entry 1 still names the original entry 0's hash: the chain breaks there.
    assert report.first_bad == 1
    assert "chain is broken" in report.detail


def test_an_edited_entry_under_a_checkpoint_is_caught_by_its_root(small_log: SmallLog) -> None:
    entries = list(small_log.entries)
    entries[3] = _rewrite(entries[3], actor="mallory")
    report = verify_downloaded_log(entries, small_log.checkpoints, small_log.key)
    assert not report.ok
    assert report.first_bad == 2  # entries 2..3 lie between the matching and failing roots


def test_a_consistent_rewrite_is_caught_by_the_signed_root(small_log: SmallLog) -> None:
    """Re-chaining every later entry after an edit still disagrees with a signed checkpoint."""
    entries = list(small_log.entries)
    entries[2] = _rewrite(entries[2], body={"note": "changed"})

    for i in range(3, len(entries)):
        entries[i] = _rewrite(entries[i], prev=hashlib.sha256(entries[i - 1]).hexdigest())
    report = verify_downloaded_log(entries, small_log.checkpoints, small_log.key)
    assert not report.ok
    assert report.first_bad == 2  # the first entry after the last checkpoint that matched
    assert "does not match" in report.detail


def test_a_removed_entry_is_named(small_log: SmallLog) -> None:
    entries = small_log.entries[:2] + small_log.entries[3:]
    report = verify_downloaded_log(entries, small_log.checkpoints, small_log.key)
    assert not report.ok
    assert report.first_bad == 2


def test_reordered_entries_are_named(small_log: SmallLog) -> None:
    entries = list(small_log.entries)
    entries[1], entries[2] = entries[2], entries[1]
    report = verify_downloaded_log(entries, small_log.checkpoints, small_log.key)
    assert not report.ok
    assert report.first_bad == 1


def test_a_truncated_log_is_caught_by_a_larger_checkpoint(small_log: SmallLog) -> None:
    report = verify_downloaded_log(small_log.entries[:4], small_log.checkpoints, small_log.key)
    assert not report.ok
    assert report.first_bad == 4
    assert "removed" in report.detail


def test_a_non_canonical_entry_is_refused(small_log: SmallLog) -> None:
    entries = list(small_log.entries)
    entries[0] = json.dumps(json.loads(entries[0]), indent=1).encode()
    report = verify_downloaded_log(entries, small_log.checkpoints, small_log.key)
    assert not report.ok
    assert report.first_bad == 0


def test_another_key_refuses_every_checkpoint(small_log: SmallLog) -> None:
    report = verify_downloaded_log(small_log.entries, small_log.checkpoints, b"\x01" * 32)
    assert not report.ok
    assert report.first_bad is None
    assert "cannot be trusted" in report.detail


def test_a_forged_checkpoint_signature_is_refused(small_log: SmallLog) -> None:
    note = small_log.checkpoints[0]
    forged = note.replace("\n2\n", "\n3\n", 1)
    assert forged != note
    report = verify_downloaded_log(small_log.entries, [forged], small_log.key)
    assert not report.ok


def test_key_files_in_every_form_people_are_handed(tmp_path: Path, small_log: SmallLog) -> None:
    b64 = base64.b64encode(small_log.key).decode()
    forms = {
        "key.pub": b64 + "\n",
        "key.json": json.dumps({"origin": small_log.origin, "public_key": b64}),
    }
    for name, text in forms.items():
        (tmp_path / name).write_text(text)
        assert read_public_key(tmp_path / name) == small_log.key
    (tmp_path / "raw").write_bytes(small_log.key)
    assert read_public_key(tmp_path / "raw") == parse_public_key(small_log.key)
    # Raw bytes that happen to look like JSON or whitespace at either end are still the key.
    for raw in (b"{" + bytes(30) + b"}", b" " + bytes(30) + b"\n"):
        (tmp_path / "raw").write_bytes(raw)
        assert read_public_key(tmp_path / "raw") == raw


def test_bad_key_files_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(MissingFile):
        read_public_key(tmp_path / "absent.pub")
    (tmp_path / "bad.pub").write_text("not a key")
    with pytest.raises(ClientConfigError, match="base64"):
        read_public_key(tmp_path / "bad.pub")
    (tmp_path / "bad.json").write_text('{"key": 1}')
    with pytest.raises(ClientConfigError, match="public_key"):
        read_public_key(tmp_path / "bad.json")
