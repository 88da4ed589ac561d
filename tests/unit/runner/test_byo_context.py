"""Build contexts: the job's deterministic bundle, its Dockerfile read and pinned in place."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from jobs.bundle import pack
from runner.errors import ByoInvalid, ByoTooLarge
from runner.host.images.build_context import (
    context_bytes,
    dockerfile_path,
    read_dockerfile,
    with_dockerfile,
)


def job(tmp_path: Path) -> Path:
    (tmp_path / "wheels").mkdir()
    (tmp_path / "wheels" / "a.whl").write_bytes(b"PK...")
    (tmp_path / "Dockerfile").write_text("FROM c2d/python-ml:latest\n")
    (tmp_path / "job.py").write_text("print(1)\n")
    return tmp_path


def test_a_folder_packs_to_the_same_bytes_as_its_bundle(tmp_path: Path) -> None:
    folder = job(tmp_path)
    assert context_bytes(folder, 1 << 20) == pack(folder).data
    assert context_bytes(pack(folder), 1 << 20) == pack(folder).data


def test_context_cap_is_enforced_for_folders_and_bytes(tmp_path: Path) -> None:
    folder = job(tmp_path)
    with pytest.raises(ByoTooLarge):
        context_bytes(folder, 10)
    with pytest.raises(ByoTooLarge):
        context_bytes(pack(folder).data, 100)


def test_a_context_with_a_symlink_is_invalid(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(ByoInvalid):
        context_bytes(buffer.getvalue(), 1 << 20)


@pytest.mark.parametrize("name", ["", "/Dockerfile", "../Dockerfile", "a/../../Dockerfile", "."])
def test_dockerfile_must_be_inside_the_context(name: str) -> None:
    with pytest.raises(ByoInvalid):
        dockerfile_path(name)


def test_dockerfile_is_read_and_replaced_leaving_every_other_byte(tmp_path: Path) -> None:
    data = pack(job(tmp_path)).data
    assert read_dockerfile(data, "./Dockerfile") == "FROM c2d/python-ml:latest\n"
    with pytest.raises(ByoInvalid, match=r"no build/Dockerfile"):
        read_dockerfile(data, "build/Dockerfile")
    out = with_dockerfile(data, "Dockerfile", "FROM sha256:abc\n")
    assert read_dockerfile(out, "Dockerfile") == "FROM sha256:abc\n"
    with tarfile.open(fileobj=io.BytesIO(data)) as a, tarfile.open(fileobj=io.BytesIO(out)) as b:
        before = [(m.name, m.mode, m.mtime, m.size) for m in a if m.name != "Dockerfile"]
        after = [(m.name, m.mode, m.mtime, m.size) for m in b if m.name != "Dockerfile"]
    assert before == after
