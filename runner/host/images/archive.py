"""Reading a ``docker save`` archive without trusting it, and rebuilding it for the engine.

``receive_archive`` writes an upload to disk and stops at the size cap. ``read_archive`` checks
the tar's headers (relative names, no ``..``, only files, folders and links that stay inside;
``docker save`` links a repeated layer to its first copy) and its ``manifest.json``: exactly one
image, a config and a layer list that agree. The image's ID is the sha256 of its config, so it
is known, and pinned, before loading.

``rebuilt_stream`` is the only thing the engine ever reads: a new tar that c2d writes from the
checked members alone, never a replay of the archive's own headers (a header copied from the
archive can make the engine read bytes c2d wrote as data as a header of its own, such as a
second ``manifest.json`` naming tags). It holds exactly three kinds of regular file, under names
c2d chooses and with fixed mode, owner and time: a ``manifest.json`` c2d writes (the config and
the layers, no tags, nothing else), the config, whose bytes hash to the pinned ID, and each
layer, copied in chunks. Nothing else from the archive reaches the engine: no ``repositories``,
``index.json`` or ``oci-layout`` (all can name tags), no blob the manifest does not name.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from runner.errors import ByoInvalid, ByoTooLarge
from runner.host.sandbox.interface import MiB

CHUNK = 1024 * 1024
MAX_MEMBERS = 100_000
MAX_JSON_BYTES = 8 * MiB
_DIFF_ID_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_MANIFEST_KEYS = {"Config", "RepoTags", "Layers", "Parent", "LayerSources"}
_SAVE_HINT = "send the output of `docker save IMAGE -o IMAGE.tar` for exactly one image"


@dataclass(frozen=True)
class ArchiveImage:
    """The one image an archive holds, as its manifest and config describe it.

    ``config`` and ``layers`` are the archive's regular files the manifest's names lead to
    (links followed), in the config's layer order; ``repo_tags`` are the tags the archive asked
    for, shown to reviewers and never applied.
    """

    image_id: str
    config: str
    layers: tuple[str, ...]
    diff_ids: tuple[str, ...]
    repo_tags: tuple[str, ...]


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


def _small(tar: tarfile.TarFile, info: tarfile.TarInfo) -> bytes:
    if info.size > MAX_JSON_BYTES:
        raise ByoInvalid(f"{info.name} is larger than {MAX_JSON_BYTES // MiB} MiB; {_SAVE_HINT}")
    handle = tar.extractfile(info)
    return handle.read() if handle else b""


def _json(tar: tarfile.TarFile, info: tarfile.TarInfo) -> tuple[bytes, object]:
    raw = _small(tar, info)
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
        config_info = _file(tar, members, config_path)
        raw, config = _json(tar, config_info)
        rootfs = config.get("rootfs") if isinstance(config, dict) else None
        diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
        if not isinstance(diff_ids, list) or not all(
            isinstance(d, str) and _DIFF_ID_RE.match(d) for d in diff_ids
        ):
            raise ByoInvalid(f"the image's config has no valid layer list; {_SAVE_HINT}")
        if len(diff_ids) != len(layers):
            raise ByoInvalid("the archive's manifest and the image's config disagree on layers")
        files = tuple(_name(_file(tar, members, str(layer))) for layer in layers)
    return ArchiveImage(
        image_id="sha256:" + hashlib.sha256(raw).hexdigest(),
        config=_name(config_info),
        layers=files,
        diff_ids=tuple(diff_ids),
        repo_tags=tuple(str(t) for t in tags or ()) if isinstance(tags, list) else (),
    )


def _padded(size: int) -> bytes:
    return b"\0" * (-size % tarfile.BLOCKSIZE)


def _header(name: str, size: int) -> bytes:
    """A fresh header for a regular file: c2d's name, fixed mode, owner and time."""
    info = tarfile.TarInfo(name)
    info.type = tarfile.REGTYPE
    info.size = size
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    # PAX only adds an extended header when a value does not fit ustar (a layer past 8 GiB).
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "strict")


def _small_file(name: str, data: bytes) -> Iterator[bytes]:
    yield _header(name, len(data))
    yield data + _padded(len(data))


def rebuilt_stream(path: Path, image: ArchiveImage) -> Iterator[bytes]:
    """A new tar of the checked image alone, as the engine should load it, read in chunks.

    Members, all regular files with fresh headers: ``manifest.json`` (written here: the config
    and layers below, ``RepoTags`` null, no other key), ``<image ID hex>.json`` (the config)
    and ``layers/<n>.tar`` (each distinct layer file once; a repeated layer is named twice in
    the manifest). Raises ByoInvalid if the archive no longer matches what ``read_archive``
    found (the config does not hash to the image ID, a layer is gone or short).
    """
    config_name = image.image_id.removeprefix("sha256:") + ".json"
    layer_names: dict[str, str] = {}
    for layer in image.layers:
        layer_names.setdefault(layer, f"layers/{len(layer_names)}.tar")
    manifest = [
        {"Config": config_name, "RepoTags": None, "Layers": [layer_names[x] for x in image.layers]}
    ]
    changed = f"the archive changed while it was being loaded; {_SAVE_HINT}"
    with _open(path) as tar:
        try:
            members = _members(tar)
            config = _small(tar, _file(tar, members, image.config))
            if "sha256:" + hashlib.sha256(config).hexdigest() != image.image_id:
                raise ByoInvalid(changed)
            yield from _small_file("manifest.json", json.dumps(manifest).encode())
            yield from _small_file(config_name, config)
            for layer, name in layer_names.items():
                info = _file(tar, members, layer)
                handle = tar.extractfile(info)
                assert handle is not None  # a regular file always has a reader
                yield _header(name, info.size)
                copied = 0
                while chunk := handle.read(CHUNK):
                    copied += len(chunk)
                    yield chunk
                if copied != info.size:
                    raise ByoInvalid(changed)
                yield _padded(info.size)
        except tarfile.TarError as exc:
            raise ByoInvalid(f"{changed} ({exc})") from exc
    yield b"\0" * (2 * tarfile.BLOCKSIZE)
