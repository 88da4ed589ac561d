"""Reading untrusted tar archives without trusting them.

``read_members`` checks every header before anything touches the disk: only regular files and
folders, relative names without ``..`` and without a control, bidi or invisible character
(``jobs.safe_text``: such a name would hide on the reviewer's screen), at most ``max_files``
members and ``max_bytes`` of file content, and one rule for the tree: **every member creates
something new**. A name may not appear twice, nor name a path that an earlier member already
made a folder (``a/b`` then ``a``, file or folder entry), nor lie inside a file. That is exactly
what writing the members in order into an empty folder needs, so the upload check
(``jobs.bundle.file_list``) and ``extract`` accept the same archives. ``extract`` then writes
what was checked, with fixed modes (files 0o644, folders 0o755) so that the sandbox's non-root
user can read them, and never follows or creates a link; if the disk still refuses a member,
that is a ``BundleError`` naming it, so a dry run or a run ends instead of being retried.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from jobs.errors import BundleError
from jobs.safe_text import escape, escaped_char, unsafe_name

_CHUNK = 1024 * 1024
_KINDS = {
    tarfile.SYMTYPE: "a symbolic link",
    tarfile.LNKTYPE: "a hard link",
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a fifo",
    tarfile.CONTTYPE: "a contiguous file",
    tarfile.GNUTYPE_SPARSE: "a sparse file",
}


@dataclass(frozen=True)
class Member:
    """A checked archive entry: its normalized path and whether it is a folder."""

    path: str
    is_dir: bool
    size: int
    info: tarfile.TarInfo


@contextmanager
def open_tar(source: bytes | Path) -> Iterator[tarfile.TarFile]:
    """Open an uncompressed tar from bytes or a file; a bad archive is a ``BundleError``."""
    try:
        # Closed by the `with` below; a context manager here would close it before the yield.
        if isinstance(source, bytes):
            tar = tarfile.open(fileobj=io.BytesIO(source), mode="r:")  # noqa: SIM115
        else:
            tar = tarfile.open(source, mode="r:")  # noqa: SIM115
    except (tarfile.TarError, OSError) as exc:
        raise BundleError(f"not a valid code bundle (uncompressed tar): {exc}") from exc
    with tar:
        yield tar


def _normalize(name: str) -> str:
    hidden = unsafe_name(name)  # undecodable bytes arrive as surrogates, which count too
    if hidden is not None:
        raise BundleError(
            f"bundle member '{escape(name)}' has a control or invisible character "
            f"({escaped_char(hidden)}) in its name; rename the file (names must be printable "
            "UTF-8 text)",
            member=name,
        )
    if name.startswith("/"):
        raise BundleError(f"bundle member {name!r} has an absolute path", member=name)
    parts = name.split("/")
    if ".." in parts:
        raise BundleError(f"bundle member {name!r} points outside the folder ('..')", member=name)
    kept = [p for p in parts if p not in ("", ".")]
    if not kept:
        raise BundleError(f"bundle member {name!r} has an empty name", member=name)
    if any("\x00" in p or "\\" in p for p in kept):
        raise BundleError(f"bundle member {name!r} has a NUL or backslash", member=name)
    return "/".join(kept)


def read_members(tar: tarfile.TarFile, *, max_files: int, max_bytes: int) -> list[Member]:
    """Check every header of ``tar`` and return the members in archive order."""
    members: list[Member] = []
    # Every path the members made so far -> whether it is a folder. A member's parents are
    # folders from then on, whether or not a folder entry named them.
    made: dict[str, bool] = {}
    total = 0
    while True:
        try:
            info = tar.next()
        except tarfile.TarError as exc:
            raise BundleError(f"not a valid code bundle: {exc}") from exc
        if info is None:
            return members
        path = _normalize(info.name)
        if info.type in _KINDS:
            raise BundleError(
                f"bundle member {path!r} is {_KINDS[info.type]}; "
                "only regular files and folders are allowed",
                member=path,
            )
        if info.type not in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE):
            raise BundleError(
                f"bundle member {path!r} has unsupported type {info.type!r}", member=path
            )
        is_dir = info.type == tarfile.DIRTYPE
        _check_new(path, made)
        made[path] = is_dir
        if len(members) + 1 > max_files:
            raise BundleError(
                f"bundle has more than {max_files} members (stopped at {path!r})", member=path
            )
        total += 0 if is_dir else info.size
        if total > max_bytes:
            raise BundleError(
                f"bundle holds more than {max_bytes} bytes of files (stopped at {path!r})",
                member=path,
            )
        members.append(Member(path, is_dir, 0 if is_dir else info.size, info))


def _check_new(path: str, made: dict[str, bool]) -> None:
    """The tree rule: ``path`` must create something new, inside folders only; its parents
    are recorded in ``made`` as folders."""
    if path in made:
        if made[path] and any(p.startswith(path + "/") for p in made):
            raise BundleError(
                f"bundle member {path!r} comes after members inside it (or twice); a folder "
                "must come before what it holds, and only once",
                member=path,
            )
        raise BundleError(f"bundle member {path!r} appears more than once", member=path)
    parents = path.split("/")[:-1]
    for depth in range(1, len(parents) + 1):
        parent = "/".join(parents[:depth])
        if made.get(parent) is False:
            raise BundleError(
                f"bundle member {path!r} is inside {parent!r}, which is a file", member=path
            )
        made[parent] = True


def read_files(source: bytes | Path, *, max_files: int, max_bytes: int) -> dict[str, bytes]:
    """Return ``{path: content}`` for every regular file, after checking every header."""
    with open_tar(source) as tar:
        members = read_members(tar, max_files=max_files, max_bytes=max_bytes)
        out = {}
        for member in members:
            if not member.is_dir:
                stream = tar.extractfile(member.info)
                assert stream is not None  # regular files always have a stream
                out[member.path] = stream.read()
        return out


def _mkdirs(dest: Path, rel: str) -> Path:
    """Create ``dest/rel`` and its missing parents as real folders with mode 0o755."""
    current = dest
    for part in rel.split("/") if rel else []:
        current = current / part
        try:
            os.mkdir(current, 0o755)
        except FileExistsError:
            if current.is_symlink() or not current.is_dir():
                raise BundleError(f"{current} exists and is not a folder", member=rel) from None
        # World-readable on purpose: the sandbox's non-root user must read the code.
        os.chmod(current, 0o755)  # noqa: S103
    return current


def extract(source: bytes | Path, dest: Path, max_files: int, max_bytes: int) -> list[str]:
    """Extract a checked archive into ``dest`` (absent or empty); return the file paths.

    Nothing is written unless every header passes; if writing fails part-way, ``dest`` is
    removed again when this call created it.
    """
    created = not dest.exists()
    if not created and (dest.is_symlink() or not dest.is_dir() or any(dest.iterdir())):
        raise BundleError(f"cannot extract into {dest}: it must be an empty folder")
    with open_tar(source) as tar:
        members = read_members(tar, max_files=max_files, max_bytes=max_bytes)
        try:
            dest.mkdir(mode=0o755, parents=True, exist_ok=True)
            os.chmod(dest, 0o755)  # noqa: S103  (see _mkdirs)
            for member in members:
                try:
                    if member.is_dir:
                        _mkdirs(dest, member.path)
                    else:
                        _write_file(tar, member, dest)
                except OSError as exc:
                    raise BundleError(
                        f"cannot extract bundle member {member.path!r}: {exc.strerror or exc}",
                        member=member.path,
                    ) from exc
        except BaseException:
            if created:
                shutil.rmtree(dest, ignore_errors=True)
            raise
    return [m.path for m in members if not m.is_dir]


def _write_file(tar: tarfile.TarFile, member: Member, dest: Path) -> None:
    parent, _, name = member.path.rpartition("/")
    folder = _mkdirs(dest, parent)
    stream = tar.extractfile(member.info)
    assert stream is not None
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(folder / name, flags, 0o644)
    with os.fdopen(fd, "wb") as out:
        os.fchmod(out.fileno(), 0o644)
        while chunk := stream.read(_CHUNK):
            out.write(chunk)
