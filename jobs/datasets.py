"""Dataset digests: a sorted manifest of every regular file's size and sha256, hashed.

``digest = sha256(RFC 8785 canonical JSON of [{"path", "size", "sha256"}, ...])`` with paths
relative to the dataset folder, ``/``-separated, sorted. Symlinks, devices, fifos and sockets
are refused: a dataset is exactly the bytes under its folder.

Hashing a large dataset is slow, so ``scan`` takes the hashes it computed before, keyed by
path and checked against ``(size, mtime_ns, ctime_ns, inode)``: a file whose stat is unchanged
is not read again, any change (a write changes mtime and ctime; a replacement changes the inode)
re-hashes it. The caller keeps ``Scan.cache`` (the store does) for next time.

A hash computed within ``RACY_NS`` of the file's last change is not trusted next time (the
"racily clean" problem git has too): file timestamps tick coarsely, so a write landing in the
same tick right after hashing could leave the stat unchanged.

The sandbox reads the data as a non-root user, so ``Scan.unreadable`` lists files that others
cannot read and folders that others cannot enter.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from jobs.digests import canonical_digest
from jobs.errors import DatasetError

_CHUNK = 1024 * 1024
RACY_NS = 2 * 10**9


@dataclass(frozen=True)
class CachedHash:
    """A file's hash and the stat it was computed under."""

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    sha256: str
    hashed_ns: int

    def matches(self, st: os.stat_result) -> bool:
        """Tell whether this hash may stand for the file with stat ``st``."""
        settled = max(self.mtime_ns, self.ctime_ns) + RACY_NS <= self.hashed_ns
        return settled and (self.size, self.mtime_ns, self.ctime_ns, self.inode) == (
            st.st_size,
            st.st_mtime_ns,
            st.st_ctime_ns,
            st.st_ino,
        )


@dataclass(frozen=True)
class ManifestEntry:
    """One file of a dataset manifest."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Scan:
    """The result of scanning a dataset folder."""

    root: str
    entries: tuple[ManifestEntry, ...]
    digest: str
    cache: dict[str, CachedHash]
    hashed: int
    unreadable: tuple[str, ...]

    @property
    def files(self) -> int:
        """Number of regular files."""
        return len(self.entries)

    @property
    def bytes(self) -> int:
        """Total size of the files."""
        return sum(e.size for e in self.entries)


def manifest_digest(entries: list[ManifestEntry] | tuple[ManifestEntry, ...]) -> str:
    """The dataset digest of a manifest (sorted here, so order does not matter)."""
    rows = sorted(entries, key=lambda e: e.path)
    return canonical_digest([{"path": e.path, "size": e.size, "sha256": e.sha256} for e in rows])


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a fifo"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device"


def _hash_file(path: Path, rel: str, listed: os.stat_result) -> tuple[str, os.stat_result]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise DatasetError(f"cannot read {rel}: {exc.strerror}", path=rel) from exc
    with os.fdopen(fd, "rb") as handle:
        before = os.fstat(handle.fileno())
        if not stat.S_ISREG(before.st_mode) or before.st_ino != listed.st_ino:
            raise DatasetError(f"{rel} was replaced while being read; try again", path=rel)
        digest = hashlib.sha256()
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
        after = os.fstat(handle.fileno())
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        raise DatasetError(f"{rel} changed while being hashed; try again when it is", path=rel)
    return "sha256:" + digest.hexdigest(), before


def scan(
    root: Path,
    cache: Mapping[str, CachedHash] | None = None,
    *,
    now_ns: Callable[[], int] = time.time_ns,
    progress: Callable[[int, int], None] | None = None,
) -> Scan:
    """Walk ``root`` and return its manifest, digest and a fresh cache.

    ``now_ns`` is the wall clock (as file timestamps use it), injectable for tests;
    ``progress(files, bytes)``, if given, hears the running totals after each file.

    Raises ``DatasetError`` for a missing folder, a link, device, fifo or socket, a file name
    that is not UTF-8, or a file that changes while it is hashed.
    """
    known = cache or {}
    folder = root.resolve()
    if not folder.is_dir():
        raise DatasetError(f"{root} is not a folder; pass the dataset's folder", path=str(root))
    entries: list[ManifestEntry] = []
    fresh: dict[str, CachedHash] = {}
    unreadable: list[str] = []
    hashed = total = 0
    if os.stat(folder).st_mode & 0o005 != 0o005:
        unreadable.append(".")
    pending = [(folder, "")]
    while pending:
        current, prefix = pending.pop()
        with os.scandir(current) as it:
            children = sorted(it, key=lambda e: e.name)
        for child in children:
            rel = prefix + child.name
            try:
                rel.encode("utf-8")
            except UnicodeEncodeError:
                raise DatasetError(f"{rel!r}: file names must be UTF-8", path=rel) from None
            st = child.stat(follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                if st.st_mode & 0o005 != 0o005:
                    unreadable.append(rel + "/")
                pending.append((Path(child.path), rel + "/"))
                continue
            if not stat.S_ISREG(st.st_mode):
                raise DatasetError(
                    f"{rel} is {_kind(st.st_mode)}; a dataset may hold only regular files "
                    "and folders (copy the target in instead)",
                    path=rel,
                )
            if not st.st_mode & stat.S_IROTH:
                unreadable.append(rel)
            cached = known.get(rel)
            if cached is not None and cached.matches(st):
                fresh[rel] = cached
            else:
                sha, st = _hash_file(Path(child.path), rel, st)
                hashed += 1
                fresh[rel] = CachedHash(
                    st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, sha, now_ns()
                )
            entries.append(ManifestEntry(rel, fresh[rel].size, fresh[rel].sha256))
            total += fresh[rel].size
            if progress is not None:
                progress(len(entries), total)
    entries.sort(key=lambda e: e.path)
    return Scan(
        root=str(folder),
        entries=tuple(entries),
        digest=manifest_digest(entries),
        cache=fresh,
        hashed=hashed,
        unreadable=tuple(sorted(unreadable)),
    )


def readable_hint(scan_result: Scan, limit: int = 5) -> str:
    """A message naming unreadable paths and the command that fixes them."""
    names = ", ".join(scan_result.unreadable[:limit])
    more = len(scan_result.unreadable) - limit
    return (
        f"the job sandbox runs as a non-root user and cannot read: {names}"
        + (f" (and {more} more)" if more > 0 else "")
        + f"; run `chmod -R o+rX {scan_result.root}`"
    )
