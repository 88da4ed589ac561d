"""Downloading an artifact so that a final file name only ever holds verified bytes.

Bytes stream into a hidden part file beside the target (same folder, so the rename is atomic),
are hashed as they are written, and are written as they arrive (never gathered), so memory
stays bounded whatever the size. A dropped connection resumes with `Range` from the bytes on
disk; a part left by an earlier run is hashed and continued. Only when the digest equals what
the server announced and what the caller expects is the part fsynced and renamed; a mismatch
deletes it. Artifact names come from the server and are checked like untrusted paths.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

import httpx

from runner.client.http import api_error, unavailable
from runner.errors import IntegrityError, ServiceUnavailable
from runner.wire import SHA256_HEADER

CHUNK = 1024 * 1024
RESUME_ATTEMPTS = 5
PART_SUFFIX = ".c2d-part"


class DownloadObserver(Protocol):
    """Told about a download's progress; the CLI passes a progress bar, a library caller nothing.

    `start` comes once per file before any `advance`; `advance` reports bytes written (also the
    bytes already on disk when a download resumes); `finish` comes once the file is in place.
    """

    def start(self, name: str, total: int) -> None: ...

    def advance(self, nbytes: int) -> None: ...

    def finish(self, name: str) -> None: ...


class Silent:
    """A DownloadObserver that ignores everything."""

    def start(self, name: str, total: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def finish(self, name: str) -> None:
        pass


@dataclass(frozen=True)
class Downloaded:
    """A file that reached its final name after its digest matched."""

    name: str
    path: Path
    sha256: str
    bytes: int


def hex_digest(digest: str) -> str:
    """`sha256:<hex>` or `<hex>` -> `<hex>` (lower case), the form compared everywhere here."""
    return digest.removeprefix("sha256:").lower()


def artifact_path(folder: Path, name: str) -> Path:
    """Where artifact `name` lands under `folder`; refuses names that would leave the folder.

    A server (or whoever sits between it and us) chooses artifact names, so they are checked
    like untrusted paths: relative, no `..`, no empty or `.` parts, no backslash or NUL.
    """
    pure = PurePosixPath(name)
    if (
        not name
        or "\\" in name
        or "\x00" in name
        or pure.is_absolute()
        or any(part in ("", ".", "..") for part in name.split("/"))
    ):
        raise IntegrityError(
            f"the server offered an artifact named {name!r}, which is not a plain relative path; "
            "nothing was downloaded; report this to the operator of the c2d server"
        )
    return folder.joinpath(*pure.parts)


def part_path(target: Path) -> Path:
    """The hidden file a download of `target` is written to before it is verified."""
    return target.with_name(f".{target.name}{PART_SUFFIX}")


def fsync_dir(folder: Path) -> None:
    """Make a rename inside `folder` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that `path` is either absent/old or complete (fsync + rename)."""
    part = part_path(path)
    with part.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(part, path)
    fsync_dir(path.parent)


def download(
    http: httpx.Client,
    url: str,
    name: str,
    folder: Path,
    *,
    expected_sha256: str | None = None,
    observer: DownloadObserver | None = None,
    chunk_size: int | None = None,
) -> Downloaded:
    """GET `url` (artifact `name`) into `folder/name`; return it once it matches.

    Contract: 1. bytes go to `folder/.<name>.c2d-part`, hashed as they are written (a part left
    by an earlier attempt is hashed and continued with a Range request); 2. a dropped
    connection resumes from the bytes on disk, up to RESUME_ATTEMPTS times; 3. the digest must
    equal the server's `X-C2D-SHA256` and `expected_sha256` (when given), else the part is
    deleted and IntegrityError raised; 4. only then fsync and rename to the final name. Any
    other failure keeps the part (never a final name) so that a rerun resumes.
    """
    observer = observer or Silent()
    target = artifact_path(folder, name)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(target)
    expected = hex_digest(expected_sha256) if expected_sha256 else None
    try:
        digest, size = _fill(http, url, part, name, expected, observer, chunk_size)
        if expected and digest != expected:
            raise IntegrityError(
                f"{name}: the downloaded bytes hash to sha256:{digest}, but the job's outcome "
                f"says sha256:{expected}; nothing was saved under {target}; fetch again, and "
                "tell the operator if it repeats"
            )
    except IntegrityError:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, target)
    fsync_dir(target.parent)
    observer.finish(name)
    return Downloaded(name, target, "sha256:" + digest, size)


def _fill(
    http: httpx.Client,
    url: str,
    part: Path,
    name: str,
    expected: str | None,
    observer: DownloadObserver,
    chunk_size: int | None,
) -> tuple[str, int]:
    """Fill `part` with the artifact's bytes; return (hex digest, size), fsynced."""
    hasher = hashlib.sha256()
    offset = _hash_existing(part, hasher)
    started = False
    for attempt in range(RESUME_ATTEMPTS + 1):
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            with http.stream("GET", url, headers=headers) as response:
                if response.status_code == 416:
                    # The part on disk is longer than the artifact: start over.
                    response.read()
                    part.unlink(missing_ok=True)
                    hasher, offset = hashlib.sha256(), 0
                    continue
                if response.is_error:
                    response.read()
                    raise api_error(response)
                if offset and response.status_code != 206:
                    # The server ignored the Range header and sends everything again.
                    part.unlink(missing_ok=True)
                    hasher, offset = hashlib.sha256(), 0
                total = _total_size(response, offset)
                announced = hex_digest(response.headers.get(SHA256_HEADER, ""))
                if expected and announced and announced != expected:
                    raise IntegrityError(
                        f"{name}: the server announces sha256:{announced}, but the job's "
                        f"outcome says sha256:{expected}; nothing was saved"
                    )
                if not started:
                    observer.start(name, total)
                    observer.advance(offset)
                    started = True
                offset = _append(part, response.iter_bytes(chunk_size), hasher, observer)
                if offset != total:
                    raise httpx.RemoteProtocolError(
                        f"the transfer ended at byte {offset} of {total}"
                    )
                digest = hasher.hexdigest()
                if announced and digest != announced:
                    raise IntegrityError(
                        f"{name}: the downloaded bytes hash to sha256:{digest}, but the server "
                        f"announced sha256:{announced}; nothing was saved"
                    )
                return digest, offset
        except httpx.TransportError as exc:
            if isinstance(exc, httpx.ConnectError) and not started:
                raise unavailable(str(http.base_url).rstrip("/"), exc) from exc
            if attempt == RESUME_ATTEMPTS:
                raise ServiceUnavailable(
                    f"{name}: the download kept breaking off ({exc}); run the same fetch "
                    "again to resume from the bytes already on disk"
                ) from exc
            # Re-read what reached the disk: that, not what was received, is the prefix.
            hasher = hashlib.sha256()
            offset = _hash_existing(part, hasher)
    raise ServiceUnavailable(f"{name}: the server refused every attempt to resume")


def _hash_existing(part: Path, hasher: Any) -> int:
    """Feed the bytes already in `part` to `hasher`; return how many there are."""
    if not part.exists():
        return 0
    size = 0
    with part.open("rb") as f:
        while block := f.read(CHUNK):
            hasher.update(block)
            size += len(block)
    return size


def _append(part: Path, chunks: Iterator[bytes], hasher: Any, observer: DownloadObserver) -> int:
    """Append `chunks` to `part`, hashing each; fsync; return the file's size."""
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        with os.fdopen(fd, "ab", closefd=False) as f:
            try:
                for chunk in chunks:
                    f.write(chunk)
                    hasher.update(chunk)
                    observer.advance(len(chunk))
            finally:
                f.flush()
                os.fsync(fd)
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


def _total_size(response: httpx.Response, offset: int) -> int:
    """The artifact's full size from Content-Range (206) or Content-Length (200)."""
    content_range = response.headers.get("Content-Range", "")
    if response.status_code == 206 and "/" in content_range:
        unit_range, _, total = content_range.partition("/")
        start = unit_range.removeprefix("bytes ").split("-")[0]
        if not start.isdigit() or int(start) != offset:
            raise IntegrityError(
                f"asked to resume at byte {offset}, but the server sent {content_range!r}"
            )
        return int(total)
    length = response.headers.get("Content-Length")
    if length is None or not length.isdigit():
        raise IntegrityError("the server sent an artifact without a Content-Length")
    return int(length)
