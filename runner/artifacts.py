"""The content-addressed artifact store: job outputs, metrics, logs and uploaded code bundles.

An artifact lives at ``ROOT/sha256/ab/cdef...`` (its sha256, split after two hex digits) and is
never changed once written. Bytes arrive through a stream that is hashed while it is copied into
a temporary file beside the store (same filesystem), fsynced, and renamed into place, so a reader
sees either the whole artifact or none of it. A stream longer than its caller's cap is refused and
leaves nothing behind.

``stage`` splits the two halves: a ``Staged`` artifact is fully written and hashed but invisible
until ``commit``. The output collector stages every file of a job and commits only when all of
them passed, so a rejected job leaves nothing of its own in the store.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from runner.errors import ArtifactError, ArtifactNotFound, ArtifactTooLarge, IntegrityError

CHUNK = 1024 * 1024
_DIGEST_RE = re.compile(r"^sha256:([0-9a-f]{64})$")


def _hex_of(digest: str) -> str:
    match = _DIGEST_RE.match(digest)
    if not match:
        raise ArtifactNotFound(f"{digest!r} is not a digest; digests look like sha256:<64 hex>")
    return match.group(1)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Staged:
    """A fully written, hashed artifact that is not in the store until ``commit``.

    Use it as a context manager: leaving the block without ``commit`` discards the bytes.
    """

    def __init__(self, store: ArtifactStore, temp: Path, digest: str, size: int) -> None:
        self._store = store
        self._temp: Path | None = temp
        self.digest = digest
        self.size = size

    def commit(self) -> str:
        """Move the bytes into the store; return the digest.

        A file already at the digest's path is replaced, not kept: these bytes are known to
        hash to the digest and that file may not any more (altered or rotted on disk), so
        storing the same content again repairs it. Readers holding it open keep their copy.
        """
        if self._temp is None:
            raise ArtifactError("this staged artifact was already committed or discarded")
        final = self._store.path_for(self.digest)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._temp, final)
        _fsync_dir(final.parent)
        self._temp = None
        return self.digest

    def discard(self) -> None:
        """Delete the staged bytes; safe to call more than once."""
        if self._temp is not None:
            self._temp.unlink(missing_ok=True)
            self._temp = None

    def __enter__(self) -> Staged:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()


class ArtifactStore:
    """Artifacts addressed by their sha256 under ``root``; safe for several writers at once."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._blobs = self.root / "sha256"
        self._tmp = self.root / "tmp"
        self._blobs.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(parents=True, exist_ok=True)

    def path_for(self, digest: str) -> Path:
        """Where the artifact ``digest`` lives (or would live); does not check it exists."""
        hexd = _hex_of(digest)
        return self._blobs / hexd[:2] / hexd[2:]

    def stage(self, fileobj: BinaryIO, max_bytes: int) -> Staged:
        """Copy ``fileobj`` to a temporary file while hashing it; refuse past ``max_bytes``.

        Raises ArtifactTooLarge (leaving nothing behind) when the stream holds more than
        ``max_bytes`` bytes. The caller must ``commit`` or ``discard`` the result.
        """
        fd, name = tempfile.mkstemp(dir=self._tmp, prefix="put-")
        temp = Path(name)
        try:
            hasher = hashlib.sha256()
            size = 0
            with os.fdopen(fd, "wb") as out:
                while True:
                    chunk = fileobj.read(min(CHUNK, max_bytes - size + 1))
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > max_bytes:
                        raise ArtifactTooLarge(
                            f"the artifact is larger than its limit of {max_bytes} bytes; "
                            "nothing of it was kept"
                        )
                    hasher.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            temp.chmod(0o444)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return Staged(self, temp, "sha256:" + hasher.hexdigest(), size)

    async def receive(self, chunks: AsyncIterator[bytes], max_bytes: int, digest: str) -> None:
        """Store the bytes of ``chunks`` if they hash to ``digest`` (at most ``max_bytes``).

        What a data host uploads must be what it signed: a stream that hashes to anything else
        is refused (``IntegrityError``) and nothing of it is kept.
        """
        _hex_of(digest)
        fd, name = tempfile.mkstemp(dir=self._tmp, prefix="recv-")
        temp = Path(name)
        try:
            hasher = hashlib.sha256()
            size = 0
            with os.fdopen(fd, "wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise ArtifactTooLarge(
                            f"the upload is larger than its limit of {max_bytes} bytes; "
                            "nothing of it was kept"
                        )
                    hasher.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            temp.chmod(0o444)
            got = "sha256:" + hasher.hexdigest()
            if got != digest:
                raise IntegrityError(
                    f"the upload hashes to {got}, not to the {digest} its data host signed; "
                    "nothing of it was kept"
                )
            Staged(self, temp, got, size).commit()
        finally:
            temp.unlink(missing_ok=True)

    def put_stream(self, fileobj: BinaryIO, max_bytes: int) -> tuple[str, int]:
        """Store the bytes of ``fileobj`` (at most ``max_bytes``); return (digest, size)."""
        with self.stage(fileobj, max_bytes) as staged:
            staged.commit()
            return staged.digest, staged.size

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        """Store ``data``; return (digest, size)."""
        return self.put_stream(io.BytesIO(data), len(data))

    def has(self, digest: str) -> bool:
        """Whether the artifact ``digest`` is in the store (False for a malformed digest)."""
        return bool(_DIGEST_RE.match(digest)) and self.path_for(digest).is_file()

    def path(self, digest: str) -> Path:
        """The file holding artifact ``digest``; raises ArtifactNotFound when it is absent."""
        final = self.path_for(digest)
        if not final.is_file():
            raise ArtifactNotFound(
                f"artifact {digest} is not in the store at {self.root}; it was never stored here "
                "or the store was moved"
            )
        return final

    def open(self, digest: str) -> BinaryIO:
        """Open artifact ``digest`` for reading; raises ArtifactNotFound when it is absent."""
        return self.path(digest).open("rb")

    def remove(self, digest: str) -> None:
        """Delete artifact ``digest`` if it is here (a blob nothing names any more)."""
        if self.has(digest):
            self.path_for(digest).unlink(missing_ok=True)

    def discard_temporaries(self) -> int:
        """Delete temporary files a crashed writer left behind; return how many.

        Call only when no writer is active (at worker start).
        """
        count = 0
        for leftover in self._tmp.iterdir():
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
                count += 1
        return count
