"""Code bundles: a job folder packed into a deterministic tar whose digest names the code.

The same folder always gives the same bytes, whatever the files' mtimes, permissions, owners or
creation order: entries are sorted, every header has mtime 0, uid/gid 0, empty user and group
names, mode 0o644 for files and 0o755 for folders. Only regular files and folders go in; a
symlink, fifo, socket or device in the folder is an error naming it, and so is a name that is
not UTF-8 or holds a control, bidi or invisible character (it would hide on the reviewer's
screen; the server refuses such a bundle too). ``.git``, ``__pycache__`` and what
``.c2dignore`` lists are left out (see ``jobs.ignore``).

The code digest is ``sha256:`` over the tar bytes. Reading a bundle someone else made (the
server on upload, the worker before a run, ``c2d review``) goes through ``jobs.tarsafe``.
"""

from __future__ import annotations

import difflib
import io
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path

from jobs import tarsafe
from jobs.digests import sha256_digest
from jobs.errors import BundleError, TooLarge
from jobs.ignore import IgnoreRules
from jobs.safe_text import escape, escaped_char, unsafe_name
from jobs.units import format_size

DEFAULT_MAX_FILES = 10_000
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Bundle:
    """Packed code: the tar bytes, their digest, and the regular files it holds, sorted."""

    data: bytes
    digest: str
    files: tuple[str, ...]

    @property
    def size(self) -> int:
        """Length of the tar in bytes."""
        return len(self.data)


BundleSource = Bundle | bytes | Path


def _header(name: str, is_dir: bool, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if is_dir else tarfile.REGTYPE
    info.size = 0 if is_dir else size
    info.mode = 0o755 if is_dir else 0o644
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _read_regular(path: Path, rel: str) -> bytes:
    """Read a file without following a symlink swapped in since it was listed."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise BundleError(f"cannot read {rel}: {exc.strerror}", member=rel) from exc
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise BundleError(f"{rel} is not a regular file", member=rel)
        return handle.read()


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a fifo"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


class _Packer:
    def __init__(self, root: Path, max_files: int, max_bytes: int) -> None:
        self.root = root
        self.rules = IgnoreRules.for_folder(root)
        self.max_files = max_files
        self.max_bytes = max_bytes
        self.entries: list[tuple[str, bytes | None]] = []  # None marks a folder
        self.files = 0
        self.bytes = 0

    def walk(self, folder: Path, prefix: str) -> None:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            rel = prefix + entry.name
            try:
                rel.encode("utf-8")
            except UnicodeEncodeError:
                raise BundleError(f"{rel!r}: file names must be UTF-8", member=rel) from None
            mode = entry.stat(follow_symlinks=False).st_mode
            is_dir = stat.S_ISDIR(mode)
            if self.rules.ignored(rel, is_dir):
                continue
            hidden = unsafe_name(entry.name)
            if hidden is not None:
                raise BundleError(
                    f"{escape(rel)}: the name holds a control or invisible character "
                    f"({escaped_char(hidden)}), which would hide on the reviewer's screen; "
                    "rename it, or list it in .c2dignore",
                    member=rel,
                )
            if is_dir:
                self.entries.append((rel, None))
                self.walk(Path(entry.path), rel + "/")
            elif stat.S_ISREG(mode):
                self.add_file(rel, Path(entry.path))
            else:
                raise BundleError(
                    f"{rel} is {_kind(mode)}; a job folder may hold only regular files and "
                    f"folders (copy the target in, or list it in .c2dignore)",
                    member=rel,
                )

    def add_file(self, rel: str, path: Path) -> None:
        self.files += 1
        if self.files > self.max_files:
            raise TooLarge(
                f"the job folder has more than {self.max_files} files; "
                "leave data and build output out with .c2dignore"
            )
        data = _read_regular(path, rel)
        self.bytes += len(data)
        if self.bytes > self.max_bytes:
            raise TooLarge(
                f"the job folder holds more than {format_size(self.max_bytes)} of files "
                f"(reached at {rel}); leave data and models out with .c2dignore"
            )
        self.entries.append((rel, data))

    def tar(self) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(
            fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8"
        ) as tar:
            for rel, data in self.entries:
                info = _header(rel, data is None, len(data or b""))
                tar.addfile(info, None if data is None else io.BytesIO(data))
        return buffer.getvalue()


def pack(
    folder: Path, *, max_files: int = DEFAULT_MAX_FILES, max_bytes: int = DEFAULT_MAX_BYTES
) -> Bundle:
    """Pack ``folder`` into a deterministic bundle.

    Raises ``BundleError`` naming a link, device, fifo or socket, ``TooLarge`` past the caps.
    """
    root = folder.resolve()
    if not root.is_dir():
        raise BundleError(f"{folder} is not a folder; pass the job folder holding job.yaml")
    packer = _Packer(root, max_files, max_bytes)
    packer.walk(root, "")
    data = packer.tar()
    files = tuple(rel for rel, content in packer.entries if content is not None)
    return Bundle(data=data, digest=sha256_digest(data), files=files)


def _data(source: BundleSource) -> bytes | Path:
    return source.data if isinstance(source, Bundle) else source


def open_bundle(
    data: bytes, *, max_files: int = DEFAULT_MAX_FILES, max_bytes: int = DEFAULT_MAX_BYTES
) -> Bundle:
    """Check bundle bytes someone sent and return them with their digest and file list."""
    files = file_list(data, max_files=max_files, max_bytes=max_bytes)
    return Bundle(data=data, digest=sha256_digest(data), files=tuple(files))


def file_list(
    source: BundleSource, *, max_files: int = DEFAULT_MAX_FILES, max_bytes: int = DEFAULT_MAX_BYTES
) -> list[str]:
    """The regular files in a bundle, sorted; every header is checked as for extraction."""
    with tarsafe.open_tar(_data(source)) as tar:
        members = tarsafe.read_members(tar, max_files=max_files, max_bytes=max_bytes)
    return sorted(m.path for m in members if not m.is_dir)


def extract(source: BundleSource, dest: Path, max_files: int, max_bytes: int) -> list[str]:
    """Safely extract a bundle into ``dest`` (absent or empty); see ``jobs.tarsafe.extract``."""
    return tarsafe.extract(_data(source), dest, max_files=max_files, max_bytes=max_bytes)


def _text(data: bytes) -> list[str] | None:
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8").splitlines(keepends=True)
    except UnicodeDecodeError:
        return None


def diff(
    old: BundleSource | None,
    new: BundleSource,
    *,
    max_files: int = DEFAULT_MAX_FILES,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> str:
    """A unified text diff from ``old`` to ``new`` (``None``: everything is new); ``""`` if same.

    Binary files are named, not shown.
    """
    caps = {"max_files": max_files, "max_bytes": max_bytes}
    before = {} if old is None else tarsafe.read_files(_data(old), **caps)
    after = tarsafe.read_files(_data(new), **caps)
    out: list[str] = []
    for path in sorted(before.keys() | after.keys()):
        a, b = before.get(path), after.get(path)
        if a == b:
            continue
        a_name = f"a/{path}" if a is not None else "/dev/null"
        b_name = f"b/{path}" if b is not None else "/dev/null"
        a_lines = _text(a) if a is not None else []
        b_lines = _text(b) if b is not None else []
        if a_lines is None or b_lines is None:
            out.append(f"Binary files {a_name} and {b_name} differ\n")
            continue
        for line in difflib.unified_diff(a_lines, b_lines, a_name, b_name):
            out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)
