"""Reading `docker save` archives without trusting them, and the tar c2d rebuilds from them.

Synthetic archives, no engine: the same hostile archives against a real engine are in
tests/integration/test_byo_archive.py.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from runner.errors import ByoInvalid, ByoTooLarge
from runner.host.images.archive import read_archive, rebuilt_stream, receive_archive
from tests.kit.archives import (
    annotated_archive,
    first_json,
    old_untagged_stream,
    read_back,
    smuggling_archive,
)


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


def rebuilt(path: Path) -> list[tuple[str, bytes, bytes]]:
    """The members of the tar c2d would send the engine for the archive at ``path``."""
    return read_back(b"".join(rebuilt_stream(path, read_archive(path))))


def only_c2d_files(members: list[tuple[str, bytes, bytes]], config_hex: str, layers: int) -> None:
    names = [name for name, _, _ in members]
    assert names == ["manifest.json", f"{config_hex}.json"] + [
        f"layers/{n}.tar" for n in range(layers)
    ]
    assert {kind for _, kind, _ in members} == {tarfile.REGTYPE}


def test_the_rebuilt_tar_holds_only_the_manifest_config_and_layers_c2d_names(
    tmp_path: Path,
) -> None:
    files, entry = image_files("a", [b"one", b"two" * 1000], ["c2d/python-ml:latest"])
    files["other/layer.tar"] = layer_tar(b"not named by the manifest")
    path = archive(tmp_path, (files, entry))
    image = read_archive(path)
    stream = b"".join(rebuilt_stream(path, image))
    members = read_back(stream)

    only_c2d_files(members, image.image_id[7:], 2)
    with tarfile.open(fileobj=io.BytesIO(stream)) as tar:
        for info in tar:
            assert (info.mode, info.uid, info.gid, info.mtime) == (0o644, 0, 0, 0)
            assert (info.uname, info.gname, info.linkname, info.pax_headers) == ("", "", "", {})
    data = {name: body for name, _, body in members}
    assert json.loads(data["manifest.json"]) == [
        {
            "Config": f"{image.image_id[7:]}.json",
            "RepoTags": None,
            "Layers": ["layers/0.tar", "layers/1.tar"],
        }
    ]
    config = data[f"{image.image_id[7:]}.json"]
    assert config == files[entry["Config"]]
    assert "sha256:" + hashlib.sha256(config).hexdigest() == image.image_id
    assert data["layers/1.tar"] == files[entry["Layers"][1]]
    replay = tmp_path / "replay.tar"
    replay.write_bytes(stream)
    assert read_archive(replay).image_id == image.image_id
    assert read_archive(replay).repo_tags == ()


def test_a_repeated_layer_is_written_once_and_named_twice(tmp_path: Path) -> None:
    files, entry = image_files("a", [b"same"], None)
    first = entry["Layers"][0]
    entry["Layers"].append("b/layer.tar")
    config = json.loads(files.pop(entry["Config"]))
    config["rootfs"]["diff_ids"] *= 2
    entry["Config"] = "config.json"
    files["config.json"] = json.dumps(config).encode()
    files["manifest.json"] = json.dumps([entry]).encode()
    path = write_tar(tmp_path / "x.tar", files, links={"b/layer.tar": f"../{first}"})
    members = rebuilt(path)
    only_c2d_files(members, read_archive(path).image_id[7:], 1)
    manifest = json.loads(members[0][2])
    assert manifest[0]["Layers"] == ["layers/0.tar", "layers/0.tar"]
    assert members[2][2] == files[first]


def test_a_symlinked_manifest_smuggles_a_second_one_past_the_old_replay_but_not_the_rebuild(
    tmp_path: Path,
) -> None:
    files, entry = image_files("a", [b"one"], None)
    victim = "c2d/python-ml:latest"
    path = smuggling_archive(archive(tmp_path, (files, entry)), tmp_path / "attack.tar", victim)
    image = read_archive(path)  # the archive passes every check of the reader

    # What the finding showed: re-read, the old replay holds a second, regular manifest.json.
    before = [(name, kind, data) for name, kind, data in read_back(old_untagged_stream(path))]
    manifests = [(kind, data) for name, kind, data in before if name == "manifest.json"]
    assert [kind for kind, _ in manifests] == [tarfile.SYMTYPE, tarfile.REGTYPE]
    assert first_json(manifests[1][1])[0]["RepoTags"] == [victim]

    members = rebuilt(path)
    only_c2d_files(members, image.image_id[7:], 1)
    assert json.loads(members[0][2]) == [
        {"Config": f"{image.image_id[7:]}.json", "RepoTags": None, "Layers": ["layers/0.tar"]}
    ]


def test_index_oci_layout_and_repositories_are_not_copied(tmp_path: Path) -> None:
    files, entry = image_files("a", [b"one"], ["c2d/python-ml:latest"])
    path = annotated_archive(archive(tmp_path, (files, entry)), tmp_path / "oci.tar", "c2d/x:y")
    with tarfile.open(path) as tar:
        assert {"index.json", "oci-layout", "repositories"} <= set(tar.getnames())
    only_c2d_files(rebuilt(path), read_archive(path).image_id[7:], 1)


def test_an_archive_changed_after_reading_is_refused(tmp_path: Path) -> None:
    files, entry = image_files("a", [b"one"], None)
    path = archive(tmp_path, (files, entry))
    image = read_archive(path)
    files[entry["Config"]] = files[entry["Config"]].replace(b"layers", b"LAYERS")
    archive(tmp_path, (files, entry))
    with pytest.raises(ByoInvalid, match="changed"):
        b"".join(rebuilt_stream(path, image))


def test_receive_archive_stops_at_the_cap_and_leaves_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "upload.tar"
    chunks = (b"x" * 1000 for _ in range(10))
    with pytest.raises(ByoTooLarge):
        receive_archive(chunks, dest, max_bytes=5000)
    assert not dest.exists()
    assert receive_archive([b"a" * 10, b"b" * 10], dest, max_bytes=20) == 20
    assert dest.read_bytes() == b"a" * 10 + b"b" * 10
