"""Reading `docker save` archives without trusting them (synthetic archives, no engine)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from runner.byo.archive import read_archive, receive_archive, untagged_stream
from runner.errors import ByoInvalid, ByoTooLarge


def layer_tar(content: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("file.txt")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def image_files(name: str, contents: list[bytes], tags: list[str] | None) -> tuple[dict, dict]:
    """Members and the manifest entry of one image, laid out as `docker save` lays it out."""
    files: dict[str, Any] = {}
    layers, diff_ids = [], []
    for n, content in enumerate(contents):
        data = layer_tar(content)
        path = f"{name}{n}/layer.tar"
        files[path] = data
        layers.append(path)
        diff_ids.append("sha256:" + hashlib.sha256(data).hexdigest())
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    files[config_name] = config
    return files, {"Config": config_name, "RepoTags": tags, "Layers": layers}


def write_tar(path: Path, files: dict[str, Any], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return path


def archive(tmp_path: Path, *entries: tuple[dict, dict], extra: dict | None = None) -> Path:
    files: dict[str, Any] = {}
    manifest = []
    for members, entry in entries:
        files.update(members)
        manifest.append(entry)
    files["manifest.json"] = json.dumps(manifest).encode()
    files["repositories"] = b'{"x": {"1": "abc"}}'
    files.update(extra or {})
    return write_tar(tmp_path / "image.tar", files)


def test_one_image_is_read_and_its_id_is_the_hash_of_its_config(tmp_path: Path) -> None:
    files, entry = image_files("a", [b"one", b"two"], ["me/img:1"])
    found = read_archive(archive(tmp_path, (files, entry)))
    config = files[entry["Config"]]
    assert found.image_id == "sha256:" + hashlib.sha256(config).hexdigest()
    assert len(found.diff_ids) == 2
    assert found.repo_tags == ("me/img:1",)


def test_two_images_are_refused(tmp_path: Path) -> None:
    path = archive(tmp_path, image_files("a", [b"1"], None), image_files("b", [b"2"], None))
    with pytest.raises(ByoInvalid, match="holds 2 images"):
        read_archive(path)


def test_no_image_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ByoInvalid, match="holds no image"):
        read_archive(archive(tmp_path))


@pytest.mark.parametrize("name", ["../evil", "/abs/evil", "a/../../evil"])
def test_members_outside_the_archive_are_refused(tmp_path: Path, name: str) -> None:
    files, entry = image_files("a", [b"1"], None)
    with pytest.raises(ByoInvalid, match="outside"):
        read_archive(archive(tmp_path, (files, entry), extra={name: b"x"}))


def test_links_that_leave_the_archive_are_refused(tmp_path: Path) -> None:
    files, entry = image_files("a", [b"1"], None)
    files["manifest.json"] = json.dumps([entry]).encode()
    path = write_tar(tmp_path / "x.tar", files, links={"b/layer.tar": "../../etc/passwd"})
    with pytest.raises(ByoInvalid, match="outside"):
        read_archive(path)


def test_a_repeated_layer_linked_to_its_first_copy_is_accepted(tmp_path: Path) -> None:
    files, entry = image_files("a", [b"same"], None)
    first = entry["Layers"][0]
    entry["Layers"].append("b/layer.tar")
    config = json.loads(files.pop(entry["Config"]))
    config["rootfs"]["diff_ids"] *= 2
    entry["Config"] = "config.json"
    files["config.json"] = json.dumps(config).encode()
    files["manifest.json"] = json.dumps([entry]).encode()
    path = write_tar(tmp_path / "x.tar", files, links={"b/layer.tar": f"../{first}"})
    assert len(read_archive(path).diff_ids) == 2


def test_layers_and_config_must_agree(tmp_path: Path) -> None:
    files, entry = image_files("a", [b"1", b"2"], None)
    entry["Layers"] = entry["Layers"][:1]
    with pytest.raises(ByoInvalid, match="disagree"):
        read_archive(archive(tmp_path, (files, entry)))


def test_missing_layer_is_refused(tmp_path: Path) -> None:
    files, entry = image_files("a", [b"1"], None)
    del files[entry["Layers"][0]]
    with pytest.raises(ByoInvalid, match="does not hold"):
        read_archive(archive(tmp_path, (files, entry)))


def test_compressed_archives_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.tar.gz"
    with tarfile.open(path, mode="w:gz") as tar:
        tar.addfile(tarfile.TarInfo("manifest.json"))
    with pytest.raises(ByoInvalid, match="uncompressed"):
        read_archive(path)


def test_untagged_stream_drops_every_tag_and_keeps_every_layer(tmp_path: Path) -> None:
    files, entry = image_files("a", [b"one", b"two" * 1000], ["c2d/python-ml:latest"])
    path = archive(tmp_path, (files, entry))
    image = read_archive(path)
    replay = tmp_path / "replay.tar"
    replay.write_bytes(b"".join(untagged_stream(path, image)))
    with tarfile.open(replay) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        layer = tar.extractfile(entry["Layers"][1]).read()  # type: ignore[union-attr]
    assert "repositories" not in names
    assert manifest == [{**entry, "RepoTags": None}]
    assert layer == files[entry["Layers"][1]]
    assert read_archive(replay).image_id == image.image_id


def test_receive_archive_stops_at_the_cap_and_leaves_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "upload.tar"
    chunks = (b"x" * 1000 for _ in range(10))
    with pytest.raises(ByoTooLarge):
        receive_archive(chunks, dest, max_bytes=5000)
    assert not dest.exists()
    assert receive_archive([b"a" * 10, b"b" * 10], dest, max_bytes=20) == 20
    assert dest.read_bytes() == b"a" * 10 + b"b" * 10
