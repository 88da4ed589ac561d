"""`c2d backup DIR`: copy a control plane's state folder while its API may be running.

Steps, in order, all into a hidden folder beside DIR that is renamed to DIR only at the end
(so a crash, a full disk or Ctrl-C leaves no folder that looks like a backup):

1. the database, with SQLite's online backup API (one consistent snapshot of store and ledger);
2. a checkpoint of the copy's ledger, signed with the installation's key, so every entry in the
   backup is covered by a signature and not only by the hash chain; then the copy is verified
   with the ledger's own verifier, and a ledger that does not verify is not backed up;
3. the ledger's public key, and its private key only when asked;
4. the artifacts, each hashed while copied and checked against the digest it is stored under
   (a blob that rotted on disk is left out and named, not copied as if good);
5. the manifest, then fsync of every folder, then the rename.

Artifacts are copied after the database, and never change once written, so every blob the
copied database names is already in the store when the copy starts.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from jobs.migrations import schema_version
from jobs.snapshots import copy_database, fsync_path, settle
from ledger import Ledger, LedgerError, VerifyReport, verify_log
from ledger.storage import get_meta
from runner.context import check_home
from runner.control.backups.errors import BackupError, TargetExists
from runner.control.backups.manifest import (
    DATABASE,
    INSTALLATION,
    MANIFEST,
    PRIVATE_KEY,
    PUBLIC_KEY,
    Manifest,
    ManifestFile,
    Progress,
    artifact_digest,
    copy_hashed,
    hash_file,
    make_parents,
)
from runner.settings import Settings


@dataclass
class BackupReport:
    """What `c2d backup` wrote."""

    path: Path
    manifest: Manifest
    damaged: list[str] = field(default_factory=list)
    vanished: int = 0


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _listed(root: Path, relative: str) -> ManifestFile:
    digest, size = hash_file(root / relative)
    return ManifestFile(path=relative, bytes=size, sha256=digest)


def _snapshot_ledger(settings: Settings, copy: Path) -> tuple[str, bytes, VerifyReport]:
    """Sign a checkpoint of the copied ledger and verify it; return (origin, public key,
    the verifier's report)."""
    with sqlite3.connect(f"file:{copy}?mode=ro", uri=True) as conn:
        origin = get_meta(conn, "origin")
    if origin is None:
        raise BackupError(f"{settings.db_path} holds no ledger; it is not a c2d state database")
    if not settings.key_path.is_file():
        raise BackupError(
            f"the ledger's signing key {settings.key_path} is missing; c2d backup runs on the "
            "control plane's machine, as the user that runs the API"
        )
    try:
        with Ledger(copy, settings.key_path, origin) as ledger:
            ledger.checkpoint()
            public_key = ledger.public_key()
    except LedgerError as exc:
        raise BackupError(f"the ledger cannot be backed up: {exc}") from exc
    settle(copy)
    report = verify_log(copy, public_key)
    if not report.ok:
        where = f" (first bad entry: {report.first_bad})" if report.first_bad is not None else ""
        raise BackupError(
            f"the ledger does not verify{where}: {report.detail}; no backup was written. "
            "Keep this state folder as it is for investigation and restore the newest backup "
            "that verifies"
        )
    return origin, public_key, report


def _blobs(artifacts: Path) -> list[tuple[str, Path, int]]:
    """Every stored blob as (manifest path, file, size), sorted; temporaries are skipped."""
    found: list[tuple[str, Path, int]] = []
    root = artifacts / "sha256"
    if not root.is_dir():
        return found
    for prefix in sorted(root.iterdir()):
        if not prefix.is_dir():
            continue
        for blob in sorted(prefix.iterdir()):
            relative = f"artifacts/sha256/{prefix.name}/{blob.name}"
            if artifact_digest(relative) is None:
                continue
            try:
                found.append((relative, blob, blob.stat().st_size))
            except FileNotFoundError:
                continue  # removed meanwhile: nothing names it any more
    return found


def _copy_artifacts(
    settings: Settings, staging: Path, progress: Progress | None
) -> tuple[list[ManifestFile], list[str], int]:
    blobs = _blobs(settings.artifacts_dir)
    total_bytes = sum(size for _, _, size in blobs)
    listed: list[ManifestFile] = []
    damaged: list[str] = []
    vanished = 0
    done_bytes = 0

    def advance(n: int) -> None:
        nonlocal done_bytes
        done_bytes += n
        if progress is not None:
            progress(len(listed) + len(damaged), done_bytes, len(blobs), total_bytes)

    for relative, blob, _ in blobs:
        target = make_parents(staging, relative)
        try:
            source = blob.open("rb")
        except FileNotFoundError:
            vanished += 1
            continue
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with source, os.fdopen(fd, "wb") as out:
            digest, size = copy_hashed(source, out, advance)
            out.flush()
            os.fsync(out.fileno())
        if digest != artifact_digest(relative):
            target.unlink()
            damaged.append(f"{artifact_digest(relative)} (its bytes hash to {digest})")
            continue
        listed.append(ManifestFile(path=relative, bytes=size, sha256=digest))
    for folder in sorted({(staging / f.path).parent for f in listed}):
        fsync_path(folder)
    return listed, damaged, vanished


def write_backup(
    settings: Settings, target: Path, *, include_key: bool, progress: Progress | None = None
) -> BackupReport:
    """Back up the control plane at ``settings.home`` into the new folder ``target``.

    Raises ``TargetExists`` when ``target`` exists (a backup is never written over anything),
    ``BackupError`` when the ledger does not verify or the key is missing; nothing is left
    behind in either case.
    """
    check_home(settings)
    target = target.absolute()
    if target.exists() or target.is_symlink():
        raise TargetExists(
            f"{target} exists; a backup is only written into a new folder. Name one that does "
            "not exist yet (for example with the date in it)"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.partial-{secrets.token_hex(4)}")
    staging.mkdir(mode=0o700)
    try:
        copy = staging / DATABASE
        copy_database(settings.db_path, copy)
        created = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        origin, public_key, report = _snapshot_ledger(settings, copy)
        with sqlite3.connect(f"file:{copy}?mode=ro", uri=True) as conn:
            store_schema = schema_version(conn)
        copy.chmod(0o600)
        (staging / PUBLIC_KEY).write_text(base64.b64encode(public_key).decode() + "\n")
        files = [_listed(staging, DATABASE), _listed(staging, PUBLIC_KEY)]
        if include_key:
            _write_private(staging / PRIVATE_KEY, settings.key_path.read_bytes())
            files.append(_listed(staging, PRIVATE_KEY))
        if settings.installation_path.is_file():
            # The id the data hosts' queues lie under (runner.installation): without it, the
            # restored control plane would send their jobs where no host looks.
            shutil.copyfile(settings.installation_path, staging / INSTALLATION)
            files.append(_listed(staging, INSTALLATION))
        artifacts, damaged, vanished = _copy_artifacts(settings, staging, progress)
        manifest = Manifest(
            created=created,
            origin=origin,
            ledger_entries=report.entries,
            ledger_root=report.root or "",
            store_schema=store_schema,
            private_key=include_key,
            files=files + artifacts,
        )
        _write_private(staging / MANIFEST, (manifest.model_dump_json(indent=2) + "\n").encode())
        fsync_path(staging / PUBLIC_KEY)
        for folder in (staging / "artifacts" / "sha256", staging / "artifacts", staging):
            if folder.is_dir():
                fsync_path(folder)
        os.rename(staging, target)
        fsync_path(target.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return BackupReport(path=target, manifest=manifest, damaged=damaged, vanished=vanished)
