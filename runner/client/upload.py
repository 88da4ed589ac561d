"""Uploading an image archive with ``c2d submit --image-archive``: size cap, declared size and
progress.

The archive is never read into memory: httpx reads the file object in chunks while it sends
the multipart body, and ``ProgressReader`` tells a ``DownloadObserver`` (the CLI's progress
bar) about each chunk as it goes.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO

from runner.client.download import DownloadObserver
from runner.errors import ByoInvalid, ByoTooLarge


class ProgressReader:
    """A read-only file object over ``handle`` that reports every chunk read to ``observer``."""

    def __init__(self, handle: IO[bytes], observer: DownloadObserver) -> None:
        self._handle = handle
        self._observer = observer

    def read(self, size: int = -1) -> bytes:
        chunk = self._handle.read(size)
        self._observer.advance(len(chunk))
        return chunk

    def fileno(self) -> int:  # lets httpx learn the length and send Content-Length
        return self._handle.fileno()

    def tell(self) -> int:
        return self._handle.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._handle.seek(offset, whence)


def check_archive(path: Path, max_bytes: int) -> int:
    """The archive's size; ByoInvalid if it is not a readable file, ByoTooLarge past the cap."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ByoInvalid(f"cannot read the image archive {path}: {exc}") from exc
    if not path.is_file():
        raise ByoInvalid(f"{path} is not a file; pass the output of `docker save IMAGE`")
    if size > max_bytes:
        raise ByoTooLarge(
            f"the image archive {path} is {size / 2**20:.0f} MiB, more than the "
            f"{max_bytes / 2**20:.0f} MiB cap (--max-archive); slim the image down"
        )
    return size
