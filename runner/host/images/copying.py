"""What a ``COPY`` puts into the image: a tar c2d writes itself, handed to the engine whole.

``from_context`` selects files of the job's bundle (the build context, already checked as the
server checks any upload: regular files and folders only), ``from_image`` re-reads what the
engine exported from an earlier stage or an allowed base. Either way the result is a new tar,
every header written here with names relative to ``/``, so what the engine unpacks into the
step's container is exactly what was selected.

Docker's rules, kept: a folder source copies its contents; a file goes to ``dest/NAME`` when
``dest`` ends in ``/``, is an existing folder, or there are several sources, else to ``dest``;
wildcards match within one folder level; a new destination folder is made (with ``--chown``'s
owner), an existing one keeps its owner and mode; files are owned by root unless ``--chown``.
"""

from __future__ import annotations

import io
import posixpath
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import IO

from runner.errors import ByoInvalid, ByoTooLarge
from runner.host.images.dockerfile import Step

Exists = Callable[[str], str | None]
"""Tells what a path in the image being built is: ``"dir"``, ``"file"`` or ``None``."""

SPOOL_BYTES = 64 * 1024 * 1024
_GLOB = set("*?[")


@dataclass(frozen=True)
class ContextFile:
    """A file or folder of the build context."""

    path: str
    is_dir: bool
    mode: int
    data: bytes = b""


def context_index(data: bytes) -> dict[str, ContextFile]:
    """The context tar's members by normalized path (folders included, ``.`` is the root)."""
    found: dict[str, ContextFile] = {".": ContextFile(".", True, 0o755)}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for info in tar:
            path = posixpath.normpath(info.name)
            if info.isdir():
                found[path] = ContextFile(path, True, info.mode & 0o7777)
            elif info.isfile():
                handle = tar.extractfile(info)
                body = handle.read() if handle else b""
                found[path] = ContextFile(path, False, info.mode & 0o7777, body)
    return found


def _match(path: str, pattern: str) -> bool:
    parts, wanted = path.split("/"), pattern.split("/")
    return len(parts) == len(wanted) and all(
        fnmatchcase(p, w) for p, w in zip(parts, wanted, strict=True)
    )


class _Writer:
    """A tar being written for one step, with its size counted against the cap."""

    def __init__(self, step: Step, cap: int) -> None:
        self.step = step
        self.cap = cap
        self.total = 0
        self.spool: IO[bytes] = tempfile.SpooledTemporaryFile(SPOOL_BYTES)  # noqa: SIM115
        self.tar = tarfile.open(fileobj=self.spool, mode="w", format=tarfile.PAX_FORMAT)  # noqa: SIM115
        self.names: set[str] = set()

    def add(self, info: tarfile.TarInfo, body: IO[bytes] | None = None) -> None:
        info.name = info.name.lstrip("/")
        if not info.name or info.name in self.names:
            return
        self.total += info.size
        if self.total > self.cap:
            raise ByoTooLarge(
                f"{self.step.where} copies more than the {self.cap // (1024 * 1024)} MiB this "
                "host's image-size cap leaves room for; copy less"
            )
        if self.step.chown is not None:
            info.uid, info.gid = self.step.chown
        elif self.step.source is None:  # from the job folder: owned by root, as Docker does
            info.uid = info.gid = 0
        info.uname = info.gname = ""
        if self.step.chmod is not None and (info.isfile() or info.isdir()):
            info.mode = self.step.chmod
        self.names.add(info.name)
        self.tar.addfile(info, body)

    def folder(self, path: str, mode: int = 0o755) -> None:
        info = tarfile.TarInfo(path)
        info.type, info.mode = tarfile.DIRTYPE, mode
        self.add(info)

    def file(self, path: str, data: bytes, mode: int) -> None:
        info = tarfile.TarInfo(path)
        info.size, info.mode = len(data), mode
        self.add(info, io.BytesIO(data))

    def done(self) -> IO[bytes]:
        self.tar.close()
        self.spool.seek(0)
        return self.spool

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, kind: object, *_: object) -> None:
        if kind is not None:  # the caller gets no tar: nothing may stay open
            self.tar.close()
            self.spool.close()


def _target(dest: str, name: str, into_folder: bool) -> str:
    return posixpath.join(dest, name) if into_folder else dest


def resolve_dest(dest: str, workdir: str) -> str:
    """The absolute destination (relative ones start at WORKDIR), trailing slash kept."""
    joined = posixpath.normpath(posixpath.join(workdir or "/", dest))
    return joined + "/" if dest.endswith("/") and joined != "/" else joined


def from_context(
    step: Step, index: dict[str, ContextFile], workdir: str, exists: Exists, cap: int
) -> IO[bytes]:
    """The tar a ``COPY`` from the job folder adds; ByoInvalid when a source matches nothing."""
    *sources, raw_dest = step.args
    dest = resolve_dest(raw_dest, workdir)
    many = len(sources) > 1 or any(_GLOB & set(s) for s in sources)
    dest_kind = exists(dest.rstrip("/") or "/")
    into = many or dest.endswith("/") or dest_kind == "dir"
    dest = dest.rstrip("/") or "/"
    matches: list[ContextFile] = []
    for src in sources:
        pattern = _norm(src)
        found = [index[pattern]] if pattern in index else []
        if not found and _GLOB & set(pattern):
            found = [f for p, f in sorted(index.items()) if p != "." and _match(p, pattern)]
        if not found:
            raise ByoInvalid(f"{step.where} {src}: no such file or folder in the job folder")
        matches += found
    with _Writer(step, cap) as writer:
        if dest_kind is None and (into or any(m.is_dir for m in matches)):
            writer.folder(dest)
        for match in matches:
            if match.is_dir:
                _copy_folder(writer, index, match.path, dest)
            else:
                target = _target(dest, posixpath.basename(match.path), into)
                writer.file(target, match.data, match.mode)
        return writer.done()


def _norm(src: str) -> str:
    return posixpath.normpath(src.lstrip("/") or ".")


def _copy_folder(writer: _Writer, index: dict[str, ContextFile], root: str, dest: str) -> None:
    prefix = "" if root == "." else root + "/"
    for path, found in sorted(index.items()):
        if path == "." or not path.startswith(prefix):
            continue
        target = posixpath.join(dest, path[len(prefix) :])
        if found.is_dir:
            writer.folder(target, found.mode)
        else:
            writer.file(target, found.data, found.mode)


def from_image(
    step: Step, exported: Iterable[bytes], workdir: str, exists: Exists, cap: int
) -> IO[bytes]:
    """The tar a ``COPY --from`` adds, from the engine's export of the source path.

    The export names everything under the source's own base name; that first component is
    replaced by the destination. Files, folders and symbolic links are kept (links stay links,
    inside the image); hard links are re-pointed; devices and fifos are refused.
    """
    dest = resolve_dest(step.args[-1], workdir)
    dest_kind = exists(dest.rstrip("/") or "/")
    into = dest.endswith("/") or dest_kind == "dir"
    dest = dest.rstrip("/") or "/"
    with (
        _Writer(step, cap) as writer,
        tarfile.open(fileobj=_ChunkReader(exported), mode="r|") as tar,
    ):
        top: str | None = None
        for info in tar:
            head, _, rest = posixpath.normpath(info.name).partition("/")
            top = top or head
            if head != top:
                raise ByoInvalid(f"{step.where}: the engine's export is not one path")
            if not (info.isfile() or info.isdir() or info.issym() or info.islnk()):
                raise ByoInvalid(f"{step.where}: {info.name} is a device or fifo; not copied")
            if info.isdir() and not rest:  # the source is a folder: its contents go to dest
                if dest_kind is None:
                    writer.folder(dest, info.mode & 0o7777)
                continue
            # A file source goes to dest (or into it); a folder's members go under dest.
            info.name = posixpath.join(dest, rest) if rest else _target(dest, head, into)
            if info.islnk():
                _, _, link_rest = posixpath.normpath(info.linkname).partition("/")
                info.linkname = posixpath.join(dest, link_rest).lstrip("/")
            writer.add(info, tar.extractfile(info) if info.isfile() else None)
        return writer.done()


class _ChunkReader(io.RawIOBase):
    """A file-like view of an iterator of byte chunks (the engine's archive stream)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, into: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(into), len(self._buffer))
        into[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n
