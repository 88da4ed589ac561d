"""`c2d restore DIR`: bring a backup back as a state folder, only if every check passes.

Steps, in order; the first that fails ends the restore and leaves nothing behind:

1. read the manifest (hostile input: only the file names a backup holds are accepted);
2. refuse a target folder that holds anything: a restore never overwrites a state folder;
3. copy every listed file into a hidden folder beside the target, hashing it as it is copied,
   and compare size and digest with the manifest (an artifact also with the digest it is
   stored under), so what was checked is exactly what is restored;
4. verify the copied ledger with the ledger's own verifier, against the key the operator
   trusts (``--key``) or the backup's own public key, which the database must name too;
5. if the backup holds the private key, check that it is the public key's other half, and if
   it holds the installation's id, that it is one (its data hosts' queues lie under it);
6. rename the hidden folder to the target.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from jobs.snapshots import fsync_path
from ledger import BadKey, VerifyReport, verify_log
from ledger.keys import load_public_key, load_signing_key, raw_public_key
from runner.control.backups.errors import BackupError, TargetExists
from runner.control.backups.manifest import (
    DATABASE,
    INSTALLATION,
    PRIVATE_KEY,
    PUBLIC_KEY,
    Manifest,
    ManifestFile,
    Progress,
    artifact_digest,
    copy_hashed,
    make_parents,
    read_manifest,
)
from runner.errors import SettingsError
from runner.installation import check_installation_id
from runner.settings import Settings

DAMAGED = "the backup was changed or damaged since it was written; nothing was restored"


@dataclass
class RestoreReport:
    """What `c2d restore` brought back."""

    home: Path
    manifest: Manifest
    ledger: VerifyReport
    hosts: list[str] = field(default_factory=list)

    @property
    def needs_key(self) -> bool:
        """The ledger's private key must be put back by hand before c2d starts."""
        return not self.manifest.private_key


def _check_empty(home: Path) -> None:
    if not (home.exists() or home.is_symlink()):
        return
    if not home.is_dir() or home.is_symlink():
        raise TargetExists(
            f"{home} exists and is not a folder; c2d restore writes only into an empty or new "
            "folder. Name another with --home (or C2D_HOME)"
        )
    held = sorted(p.name for p in home.iterdir())
    if held:
        shown = ", ".join(held[:4]) + (", ..." if len(held) > 4 else "")
        raise TargetExists(
            f"{home} is not empty (it holds {shown}); c2d restore never writes over a state "
            "folder, and nothing in it was changed. Restore into a new folder with --home "
            "DIR (then run c2d with C2D_HOME=DIR), or move this one aside first"
        )


def _copy_checked(source: Path, staging: Path, listed: ManifestFile, advance: ProgressStep) -> None:
    """Copy one listed file into ``staging``, hashing it; raise ``BackupError`` on mismatch."""
    origin = source / listed.path
    target = make_parents(staging, listed.path)
    try:
        fd_in = os.open(origin, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise BackupError(
            f"{listed.path} is listed in the manifest but missing; {DAMAGED}"
        ) from None
    except OSError as exc:
        raise BackupError(f"cannot read {origin} ({exc}); {DAMAGED}") from None
    fd_out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd_in, "rb") as src, os.fdopen(fd_out, "wb") as out:
        # One byte past the listed size is enough to know it differs: a file grown huge is
        # not copied whole.
        digest, size = copy_hashed(src, out, advance.step, limit=listed.bytes + 1)
        out.flush()
        os.fsync(out.fileno())
    advance.file_done()
    named = artifact_digest(listed.path)
    if named is not None and named != digest:
        raise BackupError(
            f"{listed.path} hashes to {digest}, not to the {named} it is stored as: {DAMAGED}. "
            "Use another backup"
        )
    if digest != listed.sha256 or size != listed.bytes:
        shown = f"{size}" if size <= listed.bytes else f"more than {listed.bytes}"
        raise BackupError(
            f"{listed.path} hashes to {digest} ({shown} bytes), but the manifest lists "
            f"{listed.sha256} ({listed.bytes} bytes): {DAMAGED}. Use another backup"
        )
    if named is not None:
        target.chmod(0o444)  # as the artifact store keeps its blobs: never changed once written


class ProgressStep:
    """Running totals of a restore, handed to the caller's ``Progress``."""

    def __init__(self, manifest: Manifest, progress: Progress | None) -> None:
        self.files = 0
        self.bytes = 0
        self.total_files = len(manifest.files)
        self.total_bytes = manifest.total_bytes
        self.progress = progress

    def step(self, n: int) -> None:
        self.bytes += n
        if self.progress is not None:
            self.progress(self.files, self.bytes, self.total_files, self.total_bytes)

    def file_done(self) -> None:
        self.files += 1


def _check_ledger(staging: Path, manifest: Manifest, trusted: bytes | None) -> VerifyReport:
    try:
        own = load_public_key(staging / PUBLIC_KEY)
    except BadKey as exc:
        raise BackupError(
            f"the backup's {PUBLIC_KEY} is not a public key ({exc}); {DAMAGED}"
        ) from None
    if trusted is not None and trusted != own:
        raise BackupError(
            "the backup's ledger key is not the key you passed with --key: this backup is of "
            "another log, or was replaced. Nothing was restored; check which key you hold"
        )
    report = verify_log(staging / DATABASE, trusted or own)
    if not report.ok:
        where = f" (first bad entry: {report.first_bad})" if report.first_bad is not None else ""
        raise BackupError(
            f"the backup's ledger does not verify{where}: {report.detail}. Nothing was "
            "restored; use an older backup"
        )
    if report.entries != manifest.ledger_entries or report.root != manifest.ledger_root:
        raise BackupError(
            f"the backup's ledger holds {report.entries} entries (root {report.root}), but its "
            f"manifest says {manifest.ledger_entries} (root {manifest.ledger_root}): {DAMAGED}"
        )
    if manifest.private_key:
        try:
            key = load_signing_key(staging / PRIVATE_KEY)
        except (BadKey, OSError) as exc:
            raise BackupError(
                f"the backup's {PRIVATE_KEY} cannot be used ({exc}); {DAMAGED}"
            ) from None
        if raw_public_key(key) != own:
            raise BackupError(
                f"the backup's {PRIVATE_KEY} is not the private half of its {PUBLIC_KEY}: {DAMAGED}"
            )
    return report


def _check_installation(path: Path) -> None:
    """Refuse an installation file that holds no installation id (hostile: read 128 bytes)."""
    with path.open("rb") as handle:
        text = handle.read(128).decode(errors="replace").strip()
    try:
        check_installation_id(text)
    except SettingsError as exc:
        raise BackupError(f"the backup's {INSTALLATION}: {exc}; {DAMAGED}") from exc


def _hosts(db: Path) -> list[str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT name FROM hosts WHERE enrolled IS NOT NULL ORDER BY name")
        return [str(r[0]) for r in rows]


def restore_backup(
    source: Path,
    settings: Settings,
    *,
    trusted_key: bytes | None = None,
    progress: Progress | None = None,
) -> RestoreReport:
    """Restore the backup in ``source`` as the state folder ``settings.home``.

    Raises ``NotABackup`` (no readable manifest), ``TargetExists`` (the folder holds anything)
    or ``BackupError`` (a file or the ledger does not match); nothing is left behind then.
    """
    manifest = read_manifest(source)
    home = settings.home.absolute()
    _check_empty(home)
    home.parent.mkdir(parents=True, exist_ok=True)
    staging = home.with_name(f".{home.name}.restoring-{secrets.token_hex(4)}")
    staging.mkdir(mode=0o700)
    try:
        step = ProgressStep(manifest, progress)
        for listed in manifest.files:
            _copy_checked(source, staging, listed, step)
        report = _check_ledger(staging, manifest, trusted_key)
        if (staging / INSTALLATION).exists():
            _check_installation(staging / INSTALLATION)
        (staging / PUBLIC_KEY).chmod(0o644)
        for folder in ("artifacts", "work", "code", "uploads"):
            (staging / folder).mkdir(exist_ok=True, mode=0o700)
        for dirpath, _, _ in os.walk(staging):
            fsync_path(Path(dirpath))
        _check_empty(home)
        if home.exists():
            home.rmdir()
        os.rename(staging, home)
        fsync_path(home.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return RestoreReport(home=home, manifest=manifest, ledger=report, hosts=_hosts(home / DATABASE))
