"""Reading a ``docker save`` archive without trusting it, before the engine sees a byte of it.

``receive_archive`` writes an upload to disk and stops at the size cap. ``read_archive`` checks
the tar's headers (relative names, no ``..``, only files, folders and links that stay inside;
``docker save`` links a repeated layer to its first copy) and its ``manifest.json``: exactly one
image, a config and a layer list that agree. The image's ID is the sha256 of its config, so it
is known, and pinned, before loading. ``untagged_stream`` replays the archive with the image's
tags removed, so loading it can never move a tag that already exists here (``c2d/python-ml`` or
anyone's); c2d then tags it in its own namespace.
"""

from __future__ import annotations

import copy
import hashlib
import json
import posixpath
import re
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from runner.errors import ByoInvalid, ByoTooLarge
from runner.sandbox.interface import MiB

CHUNK = 1024 * 1024
MAX_MEMBERS = 100_000
MAX_JSON_BYTES = 8 * MiB
_DIFF_ID_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_MANIFEST_KEYS = {"Config", "RepoTags", "Layers", "Parent", "LayerSources"}
_SAVE_HINT = "send the output of `docker save IMAGE -o IMAGE.tar` for exactly one image"


@dataclass(frozen=True)
class ArchiveImage:
    """The one image an archive holds, as its manifest and config describe it."""

    image_id: str
    config: str
    layers: tuple[str, ...]
    diff_ids: tuple[str, ...]
    repo_tags: tuple[str, ...]
    manifest: dict[str, object]


def receive_archive(chunks: Iterable[bytes], dest: Path, max_bytes: int) -> int:
    """Write an uploaded archive to ``dest`` (a new file); stop as soon as it passes the cap.

    Returns the size written. Raises ByoTooLarge past ``max_bytes``, leaving no file behind.
    """
    size = 0
    try:
        with dest.open("xb") as out:
            for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise ByoTooLarge(
                        f"the image archive is larger than {max_bytes / MiB:.0f} MiB, this "
                        "host's cap; leave out what the job does not need"
                    )
                out.write(chunk)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return size


def _name(info: tarfile.TarInfo) -> str:
    name = info.name
    norm = posixpath.normpath(name)
    if name.startswith("/") or norm == ".." or norm.startswith("../") or "\x00" in name:
        raise ByoInvalid(f"archive member {name!r} points outside the archive; {_SAVE_HINT}")
    return norm


def _members(tar: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
    found: dict[str, tarfile.TarInfo] = {}
    for info in tar:
        name = _name(info)
        if len(found) >= MAX_MEMBERS:
            raise ByoInvalid(f"the archive has more than {MAX_MEMBERS} members; {_SAVE_HINT}")
        if name in found:
            raise ByoInvalid(f"archive member {name!r} appears twice; {_SAVE_HINT}")
        if info.issym():
            target = posixpath.normpath(posixpath.join(posixpath.dirname(name), info.linkname))
            if info.linkname.startswith("/") or target == ".." or target.startswith("../"):
                raise ByoInvalid(f"archive link {name!r} points outside the archive")
        elif not (info.isreg() or info.isdir()):
            raise ByoInvalid(f"archive member {name!r} is not a file, folder or link; {_SAVE_HINT}")
        found[name] = info
    return found


def _file(tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo], name: str) -> tarfile.TarInfo:
    """The regular file ``name`` names, following links inside the archive."""
    seen: set[str] = set()
    norm = posixpath.normpath(name) if name else ""
    while norm in members and members[norm].issym() and norm not in seen:
        seen.add(norm)
        info = members[norm]
        norm = posixpath.normpath(posixpath.join(posixpath.dirname(norm), info.linkname))
    info = members.get(norm)  # type: ignore[assignment]
    if info is None or not info.isreg():
        raise ByoInvalid(f"the archive's manifest names {name!r}, which it does not hold")
    return info


def _json(tar: tarfile.TarFile, info: tarfile.TarInfo) -> tuple[bytes, object]:
    if info.size > MAX_JSON_BYTES:
        raise ByoInvalid(f"{info.name} is larger than {MAX_JSON_BYTES // MiB} MiB; {_SAVE_HINT}")
    handle = tar.extractfile(info)
    raw = handle.read() if handle else b""
    try:
        return raw, json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ByoInvalid(f"{info.name} is not valid JSON; {_SAVE_HINT}") from exc


def _open(path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(path, mode="r:")
    except (tarfile.TarError, OSError) as exc:
        raise ByoInvalid(
            f"not an uncompressed tar ({exc}); {_SAVE_HINT} (decompress it first if you gzipped it)"
        ) from exc


def read_archive(path: Path) -> ArchiveImage:
    """Check the archive at ``path`` and describe its one image; ByoInvalid otherwise."""
    with _open(path) as tar:
        try:
            members = _members(tar)
        except tarfile.TarError as exc:
            raise ByoInvalid(f"the archive is not a valid tar: {exc}; {_SAVE_HINT}") from exc
        if "manifest.json" not in members:
            raise ByoInvalid(f"the archive has no manifest.json; {_SAVE_HINT}")
        _, manifest = _json(tar, _file(tar, members, "manifest.json"))
        if not isinstance(manifest, list) or not manifest:
            raise ByoInvalid(f"the archive holds no image; {_SAVE_HINT}")
        if len(manifest) != 1:
            raise ByoInvalid(
                f"the archive holds {len(manifest)} images; a job runs in one: {_SAVE_HINT}"
            )
        entry = manifest[0]
        if not isinstance(entry, dict) or not set(entry) <= _MANIFEST_KEYS:
            raise ByoInvalid(f"the archive's manifest.json is not docker save's; {_SAVE_HINT}")
        if entry.get("LayerSources"):
            raise ByoInvalid("the archive's image has foreign layers (LayerSources); not allowed")
        config_path, layers, tags = entry.get("Config"), entry.get("Layers"), entry.get("RepoTags")
        if not isinstance(config_path, str) or not isinstance(layers, list):
            raise ByoInvalid(f"the archive's manifest lacks Config or Layers; {_SAVE_HINT}")
        raw, config = _json(tar, _file(tar, members, config_path))
        rootfs = config.get("rootfs") if isinstance(config, dict) else None
        diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
        if not isinstance(diff_ids, list) or not all(
            isinstance(d, str) and _DIFF_ID_RE.match(d) for d in diff_ids
        ):
            raise ByoInvalid(f"the image's config has no valid layer list; {_SAVE_HINT}")
        if len(diff_ids) != len(layers):
            raise ByoInvalid("the archive's manifest and the image's config disagree on layers")
        for layer in layers:
            _file(tar, members, str(layer))
    return ArchiveImage(
        image_id="sha256:" + hashlib.sha256(raw).hexdigest(),
        config=config_path,
        layers=tuple(str(x) for x in layers),
        diff_ids=tuple(diff_ids),
        repo_tags=tuple(str(t) for t in tags or ()),
        manifest=dict(entry),
    )


def _padded(size: int) -> bytes:
    return b"\0" * (-size % tarfile.BLOCKSIZE)


def untagged_stream(path: Path, image: ArchiveImage) -> Iterator[bytes]:
    """The archive's bytes as a tar stream with the image's tags removed, read in chunks.

    ``manifest.json`` is replaced by the checked manifest without ``RepoTags``; the legacy
    ``repositories`` file (tags again) is left out; every other member is copied as it is.
    """
    manifest = json.dumps([{**image.manifest, "RepoTags": None}]).encode()
    with _open(path) as tar:
        for info in tar:
            name = _name(info)
            if name == "repositories":
                continue
            if name == "manifest.json":
                header = copy.copy(info)
                header.size = len(manifest)
                yield header.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
                yield manifest + _padded(len(manifest))
                continue
            yield info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
            if info.isreg():
                handle = tar.extractfile(info)
                assert handle is not None
                while chunk := handle.read(CHUNK):
                    yield chunk
                yield _padded(info.size)
    yield b"\0" * (2 * tarfile.BLOCKSIZE)
