"""The content-addressed store keeps exactly what it was given, or nothing."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from runner.artifacts import ArtifactStore
from runner.errors import ArtifactNotFound, ArtifactTooLarge


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_put_bytes_is_addressed_by_sha256(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    digest, size = store.put_bytes(b"model bytes")
    hexd = hashlib.sha256(b"model bytes").hexdigest()
    assert (digest, size) == (f"sha256:{hexd}", 11)
    assert store.path(digest) == tmp_path / "sha256" / hexd[:2] / hexd[2:]
    assert store.has(digest)
    with store.open(digest) as f:
        assert f.read() == b"model bytes"


def test_artifacts_are_read_only_and_putting_twice_keeps_one(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    first = store.put_bytes(b"same")
    second = store.put_stream(io.BytesIO(b"same"), max_bytes=4)
    assert first == second
    assert files_under(tmp_path) == [store.path(first[0])]
    assert store.path(first[0]).stat().st_mode & 0o222 == 0


def test_stream_past_its_cap_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    with pytest.raises(ArtifactTooLarge, match="larger than its limit of 1000 bytes"):
        store.put_stream(io.BytesIO(b"x" * 1001), max_bytes=1000)
    assert files_under(tmp_path) == []


def test_stream_of_exactly_the_cap_is_kept(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    digest, size = store.put_stream(io.BytesIO(b"x" * 1000), max_bytes=1000)
    assert size == 1000
    assert store.has(digest)


def test_staged_artifact_is_invisible_until_committed(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    staged = store.stage(io.BytesIO(b"pending"), max_bytes=100)
    assert not store.has(staged.digest)
    staged.commit()
    assert store.has(staged.digest)


def test_staged_artifact_left_uncommitted_is_discarded(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    with store.stage(io.BytesIO(b"abandoned"), max_bytes=100) as staged:
        digest = staged.digest
    assert not store.has(digest)
    assert files_under(tmp_path) == []


@pytest.mark.parametrize(
    "digest", ["sha256:" + "0" * 64, "sha256:../../etc/passwd", "md5:abc", "sha256:" + "A" * 64]
)
def test_missing_or_malformed_digest_is_not_found(tmp_path: Path, digest: str) -> None:
    store = ArtifactStore(tmp_path)
    assert not store.has(digest)
    with pytest.raises(ArtifactNotFound):
        store.open(digest)


def test_temporaries_of_a_crashed_writer_are_discarded(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    (tmp_path / "tmp" / "put-leftover").write_bytes(b"half")
    assert store.discard_temporaries() == 1
    assert files_under(tmp_path) == []
