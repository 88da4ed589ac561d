"""`c2d submit --image-archive`: the client's size cap and the streamed upload's progress."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

from runner.client import Client
from runner.errors import ByoInvalid, ByoTooLarge
from runner.wire import ARCHIVE_HEADER


class Seen:
    """A DownloadObserver that records what it is told."""

    def __init__(self) -> None:
        self.started: list[tuple[str, int]] = []
        self.bytes = 0
        self.finished: list[str] = []

    def start(self, name: str, total: int) -> None:
        self.started.append((name, total))

    def advance(self, nbytes: int) -> None:
        self.bytes += nbytes

    def finish(self, name: str) -> None:
        self.finished.append(name)


def _client(received: dict[str, bytes]) -> Client:
    def handler(request: httpx.Request) -> httpx.Response:
        received["body"] = request.read()
        received["type"] = request.headers["content-type"].encode()
        received["declared"] = request.headers.get(ARCHIVE_HEADER, "").encode()
        return httpx.Response(201, json={"id": "j1", "state": "pending"})

    return Client("http://api.test", "tok", 5, transport=httpx.MockTransport(handler))


def test_the_archive_is_sent_as_its_own_part_and_every_byte_is_reported(tmp_path: Path) -> None:
    archive = tmp_path / "image.tar"
    data = os.urandom(3 * 1024 * 1024 + 17)
    archive.write_bytes(data)
    received: dict[str, bytes] = {}
    seen = Seen()
    with _client(received) as client:
        job = client.submit({"name": "t"}, b"bundle-bytes", archive, observer=seen)
    assert job["id"] == "j1"
    assert seen.started == [("image.tar", len(data))]
    assert seen.bytes == len(data)
    assert seen.finished == ["image.tar"]
    body = received["body"]
    assert b'name="image_archive"; filename="image.tar"' in body
    assert data in body
    assert json.dumps({"name": "t"}).encode() in body
    # The server allows a request this much more than the bundle cap only when declared.
    assert received["declared"] == str(len(data)).encode()


def test_a_submission_without_an_archive_declares_none() -> None:
    received: dict[str, bytes] = {}
    with _client(received) as client:
        client.submit({"name": "t"}, b"bundle-bytes")
    assert received["declared"] == b""


def test_an_archive_over_the_cap_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    archive = tmp_path / "big.tar"
    archive.write_bytes(b"x" * 2048)
    received: dict[str, bytes] = {}
    with _client(received) as client, pytest.raises(ByoTooLarge, match="--max-archive"):
        client.submit({"name": "t"}, b"b", archive, max_archive_bytes=1024)
    assert received == {}


@pytest.mark.parametrize("name", ["missing.tar", "folder"])
def test_a_missing_or_non_file_archive_is_refused(tmp_path: Path, name: str) -> None:
    (tmp_path / "folder").mkdir()
    received: dict[str, bytes] = {}
    with _client(received) as client, pytest.raises(ByoInvalid):
        client.submit({"name": "t"}, b"b", tmp_path / name)
    assert received == {}
