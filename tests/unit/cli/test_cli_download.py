"""Artifact downloads: verified before they get their name, resumed after a dropped link."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from runner.client import Client
from runner.client.download import PART_SUFFIX
from runner.errors import ApiError, IntegrityError

DATA = os.urandom(300_000)
DIGEST = hashlib.sha256(DATA).hexdigest()


class _Breaking(httpx.SyncByteStream):
    """Yields `data` in small chunks and breaks the connection after `cut` bytes."""

    def __init__(self, data: bytes, cut: int | None) -> None:
        self.data, self.cut = data, cut

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        for i in range(0, len(self.data), 10_000):
            chunk = self.data[i : i + 10_000]
            if self.cut is not None and sent + len(chunk) > self.cut:
                yield chunk[: self.cut - sent]
                raise httpx.ReadError("connection reset by peer")
            sent += len(chunk)
            yield chunk


@dataclass
class FakeArtifacts:
    """Serves one artifact like the API does, with faults a test can switch on."""

    data: bytes = DATA
    announced: str = DIGEST
    cuts: list[int] = field(default_factory=list)  # break the Nth response after this many bytes
    honour_range: bool = True
    status: int = 200
    ranges: list[str | None] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.ranges.append(request.headers.get("Range"))
        if self.status != 200:
            return httpx.Response(
                self.status, json={"error": {"kind": "conflict", "message": "not released"}}
            )
        start = 0
        header = request.headers.get("Range")
        headers = {"X-C2D-SHA256": self.announced, "Accept-Ranges": "bytes"}
        status = 200
        if header and self.honour_range:
            start = int(header.removeprefix("bytes=").split("-")[0])
            if start >= len(self.data):
                return httpx.Response(416, headers={"Content-Range": f"bytes */{len(self.data)}"})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(self.data) - 1}/{len(self.data)}"
        body = self.data[start:]
        headers["Content-Length"] = str(len(body))
        cut = self.cuts.pop(0) if self.cuts else None
        return httpx.Response(status, headers=headers, stream=_Breaking(body, cut))

    def client(self) -> Client:
        return Client("http://api.test", "tok", 5, transport=httpx.MockTransport(self))


def leftovers(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_a_download_lands_under_its_name_with_its_digest(tmp_path: Path) -> None:
    server = FakeArtifacts()
    with server.client() as client:
        got = client.download_artifact(
            "j1", "model.skops", tmp_path, expected_sha256="sha256:" + DIGEST, chunk_size=4096
        )
    assert (tmp_path / "model.skops").read_bytes() == DATA
    assert (got.sha256, got.bytes) == ("sha256:" + DIGEST, len(DATA))
    assert leftovers(tmp_path) == ["model.skops"]


def test_a_dropped_connection_resumes_from_the_bytes_on_disk(tmp_path: Path) -> None:
    server = FakeArtifacts(cuts=[120_000, 50_000])
    with server.client() as client:
        # Small chunks so that what arrived before the break reaches the disk.
        client.download_artifact("j1", "m.bin", tmp_path, expected_sha256=DIGEST, chunk_size=1000)
    assert (tmp_path / "m.bin").read_bytes() == DATA
    assert server.ranges == [None, "bytes=120000-", "bytes=170000-"]
    assert leftovers(tmp_path) == ["m.bin"]


def test_a_part_left_by_an_earlier_run_is_continued(tmp_path: Path) -> None:
    (tmp_path / f".m.bin{PART_SUFFIX}").write_bytes(DATA[:1000])
    server = FakeArtifacts()
    with server.client() as client:
        client.download_artifact("j1", "m.bin", tmp_path, expected_sha256=DIGEST)
    assert server.ranges == ["bytes=1000-"]
    assert (tmp_path / "m.bin").read_bytes() == DATA


def test_a_server_that_ignores_range_restarts_cleanly(tmp_path: Path) -> None:
    (tmp_path / f".m.bin{PART_SUFFIX}").write_bytes(DATA[:1000])
    server = FakeArtifacts(honour_range=False)
    with server.client() as client:
        client.download_artifact("j1", "m.bin", tmp_path, expected_sha256=DIGEST)
    assert (tmp_path / "m.bin").read_bytes() == DATA


def test_a_part_longer_than_the_artifact_restarts_cleanly(tmp_path: Path) -> None:
    (tmp_path / f".m.bin{PART_SUFFIX}").write_bytes(DATA + b"extra")
    server = FakeArtifacts()
    with server.client() as client:
        client.download_artifact("j1", "m.bin", tmp_path, expected_sha256=DIGEST)
    assert server.ranges == [f"bytes={len(DATA) + 5}-", None]
    assert (tmp_path / "m.bin").read_bytes() == DATA


def test_bytes_that_do_not_match_leave_no_file_at_all(tmp_path: Path) -> None:
    """The server announces the right digest but sends other bytes."""
    server = FakeArtifacts(data=DATA[:-1] + b"\x00" if DATA[-1] else DATA[:-1] + b"\x01")
    with server.client() as client, pytest.raises(IntegrityError, match="hash to"):
        client.download_artifact("j1", "m.bin", tmp_path, expected_sha256=DIGEST)
    assert leftovers(tmp_path) == []


def test_a_garbage_part_is_not_trusted(tmp_path: Path) -> None:
    """A part file whose prefix is wrong fails the digest, is deleted, and a rerun succeeds."""
    (tmp_path / f".m.bin{PART_SUFFIX}").write_bytes(b"\xff" * 1000)
    server = FakeArtifacts()
    with server.client() as client:
        with pytest.raises(IntegrityError):
            client.download_artifact("j1", "m.bin", tmp_path, expected_sha256=DIGEST)
        assert leftovers(tmp_path) == []
        client.download_artifact("j1", "m.bin", tmp_path, expected_sha256=DIGEST)
    assert (tmp_path / "m.bin").read_bytes() == DATA


def test_an_announced_digest_other_than_the_outcome_is_refused_before_writing(
    tmp_path: Path,
) -> None:
    server = FakeArtifacts()
    with server.client() as client, pytest.raises(IntegrityError, match="announces"):
        client.download_artifact("j1", "m.bin", tmp_path, expected_sha256="0" * 64)
    assert leftovers(tmp_path) == []


def test_an_existing_file_is_replaced_only_by_verified_bytes(tmp_path: Path) -> None:
    (tmp_path / "m.bin").write_bytes(b"previous good copy")
    server = FakeArtifacts(data=b"tampered")
    with server.client() as client, pytest.raises(IntegrityError):
        client.download_artifact("j1", "m.bin", tmp_path, expected_sha256=DIGEST)
    assert (tmp_path / "m.bin").read_bytes() == b"previous good copy"


@pytest.mark.parametrize("name", ["../evil", "/etc/passwd", "a/../../b", "a//b", "./x", "a\\b"])
def test_names_that_would_leave_the_folder_are_refused(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    server = FakeArtifacts()
    with server.client() as client, pytest.raises(IntegrityError, match="relative path"):
        client.download_artifact("j1", name, folder, expected_sha256=DIGEST)
    assert server.ranges == []  # nothing was even requested
    assert leftovers(tmp_path) == ["out"]


def test_names_with_folders_land_in_subfolders(tmp_path: Path) -> None:
    server = FakeArtifacts()
    with server.client() as client:
        client.download_artifact("j1", "models/m.bin", tmp_path, expected_sha256=DIGEST)
    assert (tmp_path / "models" / "m.bin").read_bytes() == DATA


def test_an_error_answer_is_the_servers_error(tmp_path: Path) -> None:
    server = FakeArtifacts(status=409)
    with server.client() as client, pytest.raises(ApiError) as caught:
        client.download_artifact("j1", "m.bin", tmp_path, expected_sha256=DIGEST)
    assert caught.value.kind == "conflict"
    assert leftovers(tmp_path) == []


def test_a_link_that_keeps_breaking_gives_up_and_keeps_the_part(tmp_path: Path) -> None:
    server = FakeArtifacts(cuts=[10_000] * 10)
    with server.client() as client, pytest.raises(Exception, match="kept breaking off") as caught:
        client.download_artifact("j1", "m.bin", tmp_path, expected_sha256=DIGEST, chunk_size=1000)
    assert getattr(caught.value, "kind", None) == "unavailable"
    assert not (tmp_path / "m.bin").exists()
    assert (tmp_path / f".m.bin{PART_SUFFIX}").stat().st_size == 60_000
