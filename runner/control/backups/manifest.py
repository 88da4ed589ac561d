"""A backup's layout and its manifest: every file it holds, with its size and sha256.

A backup folder looks like a state folder (so a person can read it with the usual tools)::

    manifest.json            this file's model, ``Manifest``
    c2d.db                   the store and the ledger, one self-contained SQLite file
    ledger.key.pub           the ledger's public key (base64 of its 32 raw bytes)
    ledger.key               the private key, only with `c2d backup --include-key`
    installation             the installation's id, the prefix of its Redis keys (if it has one)
    artifacts/sha256/ab/...  the artifact store, each blob at its own digest

The manifest is written last, into a folder that gets its final name only after every byte is
on disk, so a folder with a manifest is a whole backup. Restoring reads the manifest as
hostile input: a path that is not one of the shapes above is refused before any file is read.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ledger.checkpoint import check_key_name
from ledger.errors import BadCheckpoint
from runner.control.backups.errors import NotABackup

FORMAT = "c2d-backup/1"
MANIFEST = "manifest.json"
DATABASE = "c2d.db"
PUBLIC_KEY = "ledger.key.pub"
PRIVATE_KEY = "ledger.key"
INSTALLATION = "installation"
ARTIFACTS = "artifacts"
CHUNK = 1024 * 1024
MAX_MANIFEST = 256 * 1024 * 1024

_SHA256 = re.compile(r"^sha256:[0-9a-f]{64}$")
_ARTIFACT = re.compile(r"^artifacts/sha256/([0-9a-f]{2})/([0-9a-f]{62})$")


def artifact_digest(path: str) -> str | None:
    """The digest an ``artifacts/sha256/ab/cdef...`` path names, or None for another path."""
    match = _ARTIFACT.match(path)
    return f"sha256:{match.group(1)}{match.group(2)}" if match else None


def artifact_path(digest: str) -> str:
    """The manifest path of the artifact ``digest`` (``sha256:<64 hex>``)."""
    hexd = digest.removeprefix("sha256:")
    return f"{ARTIFACTS}/sha256/{hexd[:2]}/{hexd[2:]}"


class ManifestFile(BaseModel):
    """One file of a backup: where it is inside the backup folder, its size and digest."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    bytes: int = Field(ge=0)
    sha256: str

    @field_validator("path")
    @classmethod
    def _known_shape(cls, value: str) -> str:
        if value in (DATABASE, PUBLIC_KEY, PRIVATE_KEY, INSTALLATION) or artifact_digest(value):
            return value
        raise ValueError(
            f"{value!r} is not a file a c2d backup holds (c2d.db, ledger.key.pub, ledger.key, "
            "installation or artifacts/sha256/xx/<62 hex>)"
        )

    @field_validator("sha256")
    @classmethod
    def _digest(cls, value: str) -> str:
        if not _SHA256.match(value):
            raise ValueError("a digest looks like sha256:<64 lowercase hex>")
        return value


class Manifest(BaseModel):
    """What a backup holds and what it was taken from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = 1
    format: str = FORMAT
    created: str = Field(
        pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$",
        description="When the database was copied (UTC, ISO 8601).",
    )
    origin: str = Field(
        max_length=256,
        description="The ledger's name; the restored API must run with it.",
    )
    ledger_entries: int = Field(ge=0)
    ledger_root: str = Field(
        pattern=r"^([0-9a-f]{64})?$",
        description="The Merkle root of the ledger in the backup (hex).",
    )
    store_schema: int = Field(ge=0, description="The store's schema version in the backup.")
    private_key: bool = Field(description="Whether the ledger's private key is in the backup.")
    files: list[ManifestFile]

    @field_validator("origin")
    @classmethod
    def _origin(cls, value: str) -> str:
        try:
            return check_key_name(value)
        except BadCheckpoint as exc:
            raise ValueError(str(exc)) from None

    @field_validator("format")
    @classmethod
    def _format(cls, value: str) -> str:
        if value != FORMAT:
            raise ValueError(f"this c2d reads backups of format {FORMAT}, not {value!r}")
        return value

    @field_validator("files")
    @classmethod
    def _complete(cls, files: list[ManifestFile]) -> list[ManifestFile]:
        paths = [f.path for f in files]
        if len(set(paths)) != len(paths):
            raise ValueError("a file is listed twice")
        missing = {DATABASE, PUBLIC_KEY} - set(paths)
        if missing:
            raise ValueError(f"{', '.join(sorted(missing))} is not listed")
        return files

    @property
    def total_bytes(self) -> int:
        """The size of every file the manifest lists."""
        return sum(f.bytes for f in self.files)

    def artifacts(self) -> list[ManifestFile]:
        """The artifact files, in the manifest's order."""
        return [f for f in self.files if artifact_digest(f.path)]


def read_manifest(folder: Path) -> Manifest:
    """The manifest of the backup in ``folder``; ``NotABackup`` if there is none c2d reads."""
    path = folder / MANIFEST
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_MANIFEST + 1)
    except FileNotFoundError:
        raise NotABackup(
            f"{folder} holds no {MANIFEST}: it is not a c2d backup, or its writing did not "
            "finish (a finished one has this file); give the folder `c2d backup` made"
        ) from None
    except OSError as exc:
        raise NotABackup(f"cannot read {path}: {exc}") from None
    if len(data) > MAX_MANIFEST:
        raise NotABackup(f"{path} is larger than any manifest c2d writes; it is not one")
    try:
        return Manifest.model_validate_json(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the document"
        raise NotABackup(
            f"{path} is not a manifest this c2d reads ({where}: {first['msg']}); it was "
            "damaged or edited, or written by another version"
        ) from None


def make_parents(root: Path, relative: str) -> Path:
    """Create the folders of ``root/relative`` below ``root``, each private (0700); return
    the file's path. Backed-up artifacts include released outputs, derived from private data."""
    target = root / relative
    folder = root
    for part in Path(relative).parent.parts:
        folder = folder / part
        folder.mkdir(exist_ok=True, mode=0o700)
    return target


def copy_hashed(
    source: BinaryIO,
    target: BinaryIO,
    advance: Callable[[int], None] | None = None,
    *,
    limit: int | None = None,
) -> tuple[str, int]:
    """Copy ``source`` to ``target`` while hashing; return (sha256 digest, size).

    With ``limit``, stop after that many bytes (the digest is then of what was copied)."""
    hasher = hashlib.sha256()
    size = 0
    while limit is None or size < limit:
        want = CHUNK if limit is None else min(CHUNK, limit - size)
        chunk = source.read(want)
        if not chunk:
            break
        hasher.update(chunk)
        target.write(chunk)
        size += len(chunk)
        if advance is not None:
            advance(len(chunk))
    return "sha256:" + hasher.hexdigest(), size


def hash_file(path: Path) -> tuple[str, int]:
    """The sha256 digest and size of the file at ``path``."""
    hasher = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            hasher.update(chunk)
            size += len(chunk)
    return "sha256:" + hasher.hexdigest(), size


Progress = Callable[[int, int, int, int], None]
"""Hears ``(files done, bytes done, files in all, bytes in all)`` as a backup or a restore
copies; the CLI draws it, the core only calls it."""
