"""The build context: the job's code bundle, exactly as submitted, with its Dockerfile pinned.

A context is the same deterministic tar as the job's code bundle (``jobs.bundle``): sorted
entries, mtime 0, fixed modes and owners, regular files and folders only. That is what makes a
rebuild hit the engine's cache: ``COPY`` keys on the files' content and metadata, and those never
change between two packings of the same folder. A folder is packed with the bundle's rules
(``.c2dignore`` included); bundle bytes are checked as the server checks an upload.

Files copied into the image keep the bundle's modes: 0o644 for files, 0o755 for folders. A
script that must be executable is run through its interpreter or given ``RUN chmod +x``.
"""

from __future__ import annotations

import copy
import io
import posixpath
import tarfile
from pathlib import Path

from jobs import bundle as bundles
from jobs.errors import JobsError
from runner.errors import ByoInvalid, ByoTooLarge
from runner.host.sandbox.interface import MiB

Context = Path | bytes | bundles.Bundle


def context_bytes(context: Context, max_bytes: int) -> bytes:
    """The context as checked, deterministic tar bytes; a folder is packed first.

    Raises ByoTooLarge past ``max_bytes`` (of tar for bytes, of file content for a folder),
    ByoInvalid for a folder or tar the bundle rules refuse.
    """
    try:
        if isinstance(context, Path):
            packed = bundles.pack(context, max_bytes=max_bytes)
            data = packed.data
        else:
            data = context.data if isinstance(context, bundles.Bundle) else context
            if len(data) > max_bytes:
                raise ByoTooLarge(
                    f"the build context is {len(data) / MiB:.1f} MiB, more than the "
                    f"{max_bytes / MiB:.1f} MiB this host allows; leave data and build output "
                    "out with .c2dignore"
                )
            bundles.file_list(data, max_bytes=max_bytes)
    except JobsError as exc:
        error = ByoTooLarge if exc.kind == "too_large" else ByoInvalid
        raise error(f"the build context cannot be used: {exc}") from exc
    if len(data) > max_bytes:
        raise ByoTooLarge(
            f"the build context is {len(data) / MiB:.1f} MiB of tar, more than the "
            f"{max_bytes / MiB:.1f} MiB this host allows; leave data out with .c2dignore"
        )
    return data


def dockerfile_path(name: str) -> str:
    """``name`` as a normalized path inside the context; ByoInvalid if it leaves it."""
    norm = posixpath.normpath(name)
    if not name or name.startswith("/") or norm == ".." or norm.startswith("../") or norm == ".":
        raise ByoInvalid(f"the Dockerfile {name!r} must be a path inside the job folder")
    return norm


def _member_name(info: tarfile.TarInfo) -> str:
    return posixpath.normpath(info.name)


def read_dockerfile(data: bytes, name: str) -> str:
    """The text of the Dockerfile ``name`` in the context tar ``data``."""
    path = dockerfile_path(name)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for info in tar:
            if _member_name(info) == path and info.isfile():
                handle = tar.extractfile(info)
                raw = handle.read() if handle else b""
                try:
                    return raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise ByoInvalid(f"{path} is not UTF-8 text") from exc
    raise ByoInvalid(
        f"the job folder has no {path}; a job with `image: {{build: {path}}}` must include it"
    )


def with_dockerfile(data: bytes, name: str, text: str) -> bytes:
    """The context tar with the Dockerfile ``name`` replaced by ``text``, all else unchanged."""
    path = dockerfile_path(name)
    out = io.BytesIO()
    new = text.encode("utf-8")
    with (
        tarfile.open(fileobj=io.BytesIO(data), mode="r:") as src,
        tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8") as dst,
    ):
        for info in src:
            if info.isfile() and _member_name(info) == path:
                replaced = copy.copy(info)
                replaced.size = len(new)
                dst.addfile(replaced, io.BytesIO(new))
            elif info.isfile():
                dst.addfile(info, src.extractfile(info))
            else:
                dst.addfile(info)
    return out.getvalue()
