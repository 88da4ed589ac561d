"""`c2d backup` and `c2d restore` on a control plane opened in this process.

A backup lists every file it holds with its digest, holds the private key only when asked and
never leaves a half-written folder; a restore brings back exactly what was backed up, and
refuses (leaving nothing behind) a changed artifact byte, an edited ledger row, a manifest
that names files a backup never holds, a key other than the one the operator trusts, and a
target folder that holds anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger import verify_log
from ledger.keys import load_public_key, load_signing_key, raw_public_key
from runner.context import open_context
from runner.control.backups.errors import BackupError, NotABackup, TargetExists
from runner.control.backups.make import write_backup
from runner.control.backups.manifest import (
    DATABASE,
    INSTALLATION,
    MANIFEST,
    PRIVATE_KEY,
    PUBLIC_KEY,
    Manifest,
    artifact_path,
    read_manifest,
)
from runner.control.backups.restore import restore_backup
from runner.settings import Settings
from runner.transport import key_prefix
from tests.kit.worlds import ControlWorld, build_control_world

MODEL = b"a model's bytes " * 4096


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ControlWorld]:
    """A control plane with users, a registered dataset (so ledger entries) and artifacts."""
    made = build_control_world(tmp_path / "w")
    made.control.artifacts.put_bytes(MODEL)
    made.control.artifacts.put_bytes(b'{"accuracy": 0.9}')
    yield made
    made.close()


def settings_of(world: ControlWorld) -> Settings:
    return world.control.settings


def target(world: ControlWorld, name: str) -> Settings:
    """The settings of a fresh state folder ``name`` beside the world's."""
    return settings_of(world).model_copy(update={"home": world.tmp / name})


def stored_blobs(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted((root / "sha256").rglob("*"))
        if p.is_file()
    }


def rewrite_manifest(folder: Path, **changes: object) -> None:
    document = json.loads((folder / MANIFEST).read_text())
    document.update(changes)
    (folder / MANIFEST).write_text(json.dumps(document))


def relist(folder: Path, path: str) -> None:
    """Put ``path``'s present digest and size in the manifest, as a careful forger would."""
    data = (folder / path).read_bytes()
    document = json.loads((folder / MANIFEST).read_text())
    for listed in document["files"]:
        if listed["path"] == path:
            listed["sha256"] = "sha256:" + hashlib.sha256(data).hexdigest()
            listed["bytes"] = len(data)
    (folder / MANIFEST).write_text(json.dumps(document))


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_the_manifest_lists_every_file_with_its_digest(world: ControlWorld) -> None:
    settings = settings_of(world)
    report = write_backup(settings, world.tmp / "bk", include_key=False)
    manifest = read_manifest(world.tmp / "bk")
    assert manifest == report.manifest
    on_disk = sorted(
        str(p.relative_to(world.tmp / "bk"))
        for p in (world.tmp / "bk").rglob("*")
        if p.is_file() and p.name != MANIFEST
    )
    assert sorted(f.path for f in manifest.files) == on_disk
    for listed in manifest.files:
        data = (world.tmp / "bk" / listed.path).read_bytes()
        assert listed.sha256 == "sha256:" + hashlib.sha256(data).hexdigest()
        assert listed.bytes == len(data)
    model = "sha256:" + hashlib.sha256(MODEL).hexdigest()
    assert artifact_path(model) in on_disk
    assert PRIVATE_KEY not in on_disk
    assert manifest.private_key is False
    assert manifest.origin == settings.origin
    assert manifest.ledger_entries == world.control.ledger.size()
    assert leftovers(world.tmp) == []


def test_the_backup_ledger_is_signed_to_its_last_entry_and_verifies(world: ControlWorld) -> None:
    write_backup(settings_of(world), world.tmp / "bk", include_key=False)
    public_key = load_public_key(world.tmp / "bk" / PUBLIC_KEY)
    assert public_key == world.control.ledger.public_key()
    report = verify_log(world.tmp / "bk" / DATABASE, public_key)
    assert report.ok, report.detail
    with sqlite3.connect(world.tmp / "bk" / DATABASE) as conn:
        (largest,) = conn.execute("SELECT max(size) FROM ledger_checkpoints").fetchone()
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert largest == report.entries
    assert not (world.tmp / "bk" / (DATABASE + "-wal")).exists()


def test_the_private_key_only_when_asked_and_private(world: ControlWorld) -> None:
    write_backup(settings_of(world), world.tmp / "bk", include_key=True)
    key = world.tmp / "bk" / PRIVATE_KEY
    assert key.stat().st_mode & 0o077 == 0
    assert raw_public_key(load_signing_key(key)) == world.control.ledger.public_key()
    assert read_manifest(world.tmp / "bk").private_key is True


def test_a_backup_is_never_written_over_a_folder(world: ControlWorld) -> None:
    (world.tmp / "bk").mkdir()
    (world.tmp / "bk" / "keep.txt").write_text("mine")
    with pytest.raises(TargetExists, match="new folder"):
        write_backup(settings_of(world), world.tmp / "bk", include_key=False)
    assert [p.name for p in (world.tmp / "bk").iterdir()] == ["keep.txt"]
    assert leftovers(world.tmp) == []


def test_a_ledger_that_does_not_verify_is_not_backed_up(world: ControlWorld) -> None:
    settings = settings_of(world)
    with sqlite3.connect(settings.db_path) as conn:
        conn.execute("UPDATE ledger_entries SET canonical = CAST('{}' AS BLOB) WHERE seq = 1")
    with pytest.raises(BackupError, match="entry 1"):
        write_backup(settings, world.tmp / "bk", include_key=False)
    assert not (world.tmp / "bk").exists()
    assert leftovers(world.tmp) == []


def test_a_restore_brings_back_what_was_backed_up(world: ControlWorld) -> None:
    settings = settings_of(world)
    write_backup(settings, world.tmp / "bk", include_key=True)
    restored = target(world, "restored")
    report = restore_backup(world.tmp / "bk", restored)
    assert report.home == restored.home
    assert report.ledger.ok
    assert report.ledger.entries == world.control.ledger.size()
    assert report.needs_key is False
    assert report.hosts == ["local"]
    assert stored_blobs(restored.artifacts_dir) == stored_blobs(settings.artifacts_dir)
    assert restored.key_path.read_bytes() == settings.key_path.read_bytes()
    assert restored.key_path.stat().st_mode & 0o077 == 0
    with (
        sqlite3.connect(settings.db_path) as live,
        sqlite3.connect(restored.db_path) as back,
    ):
        for table in ("users", "datasets", "jobs", "hosts"):
            query = f"SELECT * FROM {table} ORDER BY 1"
            assert back.execute(query).fetchall() == live.execute(query).fetchall()
    assert leftovers(world.tmp) == []


def test_without_the_private_key_a_restore_says_it_is_needed(world: ControlWorld) -> None:
    write_backup(settings_of(world), world.tmp / "bk", include_key=False)
    restored = target(world, "restored")
    report = restore_backup(world.tmp / "bk", restored)
    assert report.needs_key is True
    assert not restored.key_path.exists()


def test_a_changed_artifact_byte_is_refused(world: ControlWorld) -> None:
    write_backup(settings_of(world), world.tmp / "bk", include_key=False)
    model = world.tmp / "bk" / artifact_path("sha256:" + hashlib.sha256(MODEL).hexdigest())
    data = bytearray(model.read_bytes())
    data[1000] ^= 0x01
    model.chmod(0o600)
    model.write_bytes(bytes(data))
    restored = target(world, "restored")
    with pytest.raises(BackupError, match="changed or damaged") as caught:
        restore_backup(world.tmp / "bk", restored)
    assert model.name in str(caught.value)
    assert not restored.home.exists()
    assert leftovers(world.tmp) == []


def test_a_changed_artifact_with_a_forged_manifest_is_still_refused(world: ControlWorld) -> None:
    """An artifact is stored under its own digest: relisting it does not make it pass."""
    write_backup(settings_of(world), world.tmp / "bk", include_key=False)
    relative = artifact_path("sha256:" + hashlib.sha256(MODEL).hexdigest())
    model = world.tmp / "bk" / relative
    model.chmod(0o600)
    model.write_bytes(MODEL.replace(b"model", b"forge"))
    relist(world.tmp / "bk", relative)
    with pytest.raises(BackupError, match="it is stored as"):
        restore_backup(world.tmp / "bk", target(world, "restored"))


def test_an_edited_ledger_row_is_refused_naming_the_entry(world: ControlWorld) -> None:
    write_backup(settings_of(world), world.tmp / "bk", include_key=False)
    copy = world.tmp / "bk" / DATABASE
    with sqlite3.connect(copy) as conn:
        (canonical,) = conn.execute("SELECT canonical FROM ledger_entries WHERE seq = 2").fetchone()
        edited = bytes(canonical).replace(b'"actor":"', b'"actor":"x', 1)
        assert edited != bytes(canonical)
        conn.execute("UPDATE ledger_entries SET canonical = ? WHERE seq = 2", (edited,))
    # Caught by the manifest first...
    restored = target(world, "restored")
    with pytest.raises(BackupError, match=r"c2d\.db hashes to"):
        restore_backup(world.tmp / "bk", restored)
    # ...and by the ledger's verifier when the forger relists the database too.
    relist(world.tmp / "bk", DATABASE)
    with pytest.raises(BackupError, match=r"does not verify \(first bad entry: 2\)"):
        restore_backup(world.tmp / "bk", restored)
    assert not restored.home.exists()
    assert leftovers(world.tmp) == []


def test_a_backup_of_another_log_is_refused_against_the_trusted_key(world: ControlWorld) -> None:
    write_backup(settings_of(world), world.tmp / "bk", include_key=False)
    other = os.urandom(32)
    with pytest.raises(BackupError, match="not the key you passed"):
        restore_backup(world.tmp / "bk", target(world, "restored"), trusted_key=other)
    own = world.control.ledger.public_key()
    assert restore_backup(world.tmp / "bk", target(world, "ok"), trusted_key=own).ledger.ok


def test_a_non_empty_target_is_refused_and_left_alone(world: ControlWorld) -> None:
    write_backup(settings_of(world), world.tmp / "bk", include_key=False)
    restored = target(world, "restored")
    restored.home.mkdir()
    (restored.home / "notes.txt").write_text("the operator's")
    with pytest.raises(TargetExists, match=r"not empty \(it holds notes.txt\)"):
        restore_backup(world.tmp / "bk", restored)
    assert [p.name for p in restored.home.iterdir()] == ["notes.txt"]
    # An empty folder is fine.
    (restored.home / "notes.txt").unlink()
    assert restore_backup(world.tmp / "bk", restored).ledger.ok


@pytest.mark.parametrize(
    "path", ["../outside", "/etc/passwd", "artifacts/sha256/ab/../../../c2d.db", "hosts/local"]
)
def test_a_manifest_naming_other_files_is_not_a_backup(world: ControlWorld, path: str) -> None:
    write_backup(settings_of(world), world.tmp / "bk", include_key=False)
    document = json.loads((world.tmp / "bk" / MANIFEST).read_text())
    document["files"].append({"path": path, "bytes": 1, "sha256": "sha256:" + "0" * 64})
    (world.tmp / "bk" / MANIFEST).write_text(json.dumps(document))
    with pytest.raises(NotABackup, match="not a file a c2d backup holds"):
        restore_backup(world.tmp / "bk", target(world, "restored"))
    assert not (world.tmp / "restored").exists()


def test_a_folder_without_a_manifest_is_not_a_backup(world: ControlWorld) -> None:
    (world.tmp / "half").mkdir()
    with pytest.raises(NotABackup, match="did not finish"):
        restore_backup(world.tmp / "half", target(world, "restored"))


def test_a_manifest_that_lacks_the_database_is_refused() -> None:
    with pytest.raises(ValueError, match=r"c2d\.db is not listed"):
        Manifest(
            created="2026-01-01T00:00:00Z",
            origin="o",
            ledger_entries=0,
            ledger_root="",
            store_schema=7,
            private_key=False,
            files=[{"path": PUBLIC_KEY, "bytes": 1, "sha256": "sha256:" + "0" * 64}],  # type: ignore[list-item]
        )


def test_a_manifest_that_disagrees_with_the_ledger_is_refused(world: ControlWorld) -> None:
    write_backup(settings_of(world), world.tmp / "bk", include_key=False)
    rewrite_manifest(world.tmp / "bk", ledger_entries=1)
    with pytest.raises(BackupError, match="its manifest says 1"):
        restore_backup(world.tmp / "bk", target(world, "restored"))


def test_progress_hears_every_byte(world: ControlWorld) -> None:
    heard: list[tuple[int, ...]] = []
    write_backup(
        settings_of(world), world.tmp / "bk", include_key=False, progress=lambda *t: heard.append(t)
    )
    blobs = stored_blobs(world.tmp / "bk" / "artifacts")
    assert heard[-1][1] == heard[-1][3] == sum(len(b) for b in blobs.values())
    assert heard[-1][2] == len(blobs)


@pytest.mark.parametrize(
    "changes",
    [
        {"origin": "c2d/vm\x1b[2J"},
        {"origin": "two words"},
        {"created": "yesterday\x1b[1A"},
        {"ledger_root": "zz"},
        {"format": "c2d-backup/9"},
    ],
)
def test_a_manifest_with_hostile_fields_is_not_a_backup(
    world: ControlWorld, changes: dict[str, str]
) -> None:
    write_backup(settings_of(world), world.tmp / "bk", include_key=False)
    rewrite_manifest(world.tmp / "bk", **changes)
    with pytest.raises(NotABackup, match="not a manifest this c2d reads"):
        restore_backup(world.tmp / "bk", target(world, "restored"))


def test_a_blob_rotted_in_the_store_is_left_out_and_named(world: ControlWorld) -> None:
    settings = settings_of(world)
    digest = "sha256:" + hashlib.sha256(MODEL).hexdigest()
    blob = world.control.artifacts.path(digest)
    blob.chmod(0o600)
    blob.write_bytes(MODEL[:-1] + b"!")
    report = write_backup(settings, world.tmp / "bk", include_key=False)
    assert len(report.damaged) == 1
    assert report.damaged[0].startswith(digest)
    assert artifact_path(digest) not in [f.path for f in report.manifest.files]
    assert not (world.tmp / "bk" / artifact_path(digest)).exists()
    # What is in the backup is whole, so it restores.
    assert restore_backup(world.tmp / "bk", target(world, "restored")).ledger.ok


def test_a_grown_file_is_refused_without_copying_it_whole(world: ControlWorld) -> None:
    write_backup(settings_of(world), world.tmp / "bk", include_key=False)
    with (world.tmp / "bk" / PUBLIC_KEY).open("ab") as handle:
        handle.write(b"x" * (3 * 1024 * 1024))
    with pytest.raises(BackupError, match=r"ledger\.key\.pub hashes to .* \(more than \d+ bytes\)"):
        restore_backup(world.tmp / "bk", target(world, "restored"))
    assert not (world.tmp / "restored").exists()


def test_a_restore_keeps_the_installation_id_its_data_hosts_queues_lie_under(
    world: ControlWorld,
) -> None:
    settings = settings_of(world)
    write_backup(settings, world.tmp / "bk", include_key=True)
    # As `c2d restore` and then `c2d server` build their settings: from the environment only.
    restored = target(world, "restored").model_copy(update={"installation": ""})
    restore_backup(world.tmp / "bk", restored)

    assert INSTALLATION in {f.path for f in read_manifest(world.tmp / "bk").files}
    ctx = open_context(restored)
    try:
        assert key_prefix(ctx.settings) == key_prefix(settings) == f"c2d:{settings.installation}:"
    finally:
        ctx.close()


def test_a_backup_whose_installation_id_is_not_one_is_refused(world: ControlWorld) -> None:
    write_backup(settings_of(world), world.tmp / "bk", include_key=False)
    installation = world.tmp / "bk" / INSTALLATION
    installation.chmod(0o600)
    installation.write_text("../../etc\n")
    manifest = json.loads((world.tmp / "bk" / MANIFEST).read_text())
    digest = "sha256:" + hashlib.sha256(b"../../etc\n").hexdigest()
    for listed in manifest["files"]:
        if listed["path"] == INSTALLATION:
            listed.update(bytes=10, sha256=digest)
    (world.tmp / "bk" / MANIFEST).chmod(0o600)
    (world.tmp / "bk" / MANIFEST).write_text(json.dumps(manifest))
    restored = target(world, "restored")
    with pytest.raises(BackupError, match="not an installation id"):
        restore_backup(world.tmp / "bk", restored)
    assert not restored.home.exists()
