"""The submission form parser: caps per file part, spooled into the state folder's uploads."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from starlette.datastructures import UploadFile
from starlette.requests import Request

from jobs.errors import InvalidRequest, TooLarge
from runner.control.api.submit import read_form
from runner.wire import ARCHIVE_HEADER

BOUNDARY = "b0undary"
CAP = 64 * 1024


def form_body(parts: list[tuple[str, bytes, bool]]) -> bytes:
    """A multipart body of (name, content, is_file) parts."""
    out = b""
    for name, content, is_file in parts:
        filename = f'; filename="{name}.tar"' if is_file else ""
        out += (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"{filename}\r\n\r\n'
        ).encode()
        out += content + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def parse(body: bytes, spool: Path, headers: dict[str, str] | None = None) -> Any:
    raw = [
        (b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode()),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in (headers or {}).items()),
    ]
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)]

    async def receive() -> dict[str, Any]:
        chunk = chunks.pop(0) if chunks else b""
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def go() -> Any:
        request = Request({"type": "http", "method": "POST", "headers": raw}, receive)
        return await read_form(request, CAP, 8 * 2**20, spool_dir=spool)

    return asyncio.run(go())


def test_a_file_past_the_spool_size_lands_in_the_uploads_folder(tmp_path: Path) -> None:
    archive = os.urandom(3 * 2**20)
    body = form_body(
        [("spec", b"{}", False), ("bundle", b"x", True), ("image_archive", archive, True)]
    )
    form = parse(body, tmp_path, {ARCHIVE_HEADER: str(len(archive))})
    try:
        upload = form.get("image_archive")
        assert isinstance(upload, UploadFile)
        assert upload.file.read() == archive
        where = os.readlink(f"/proc/self/fd/{upload.file.fileno()}")
        assert where.startswith(str(tmp_path)), where
    finally:
        asyncio.run(form.close())


def test_a_bundle_past_its_cap_is_refused_while_parsing(tmp_path: Path) -> None:
    body = form_body([("spec", b"{}", False), ("bundle", b"x" * (CAP + 1), True)])
    with pytest.raises(TooLarge, match="code bundle is larger"):
        parse(body, tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("declared", "error", "message"),
    [
        (None, InvalidRequest, ARCHIVE_HEADER),  # an archive nobody declared
        ("100", TooLarge, "larger than the 100 bytes declared"),
        (str(9 * 2**20), TooLarge, "more than the 8MiB"),
        ("lots", InvalidRequest, "size in bytes"),
    ],
)
def test_an_archive_part_must_be_declared_and_within_its_declaration(
    tmp_path: Path, declared: str | None, error: type[Exception], message: str
) -> None:
    body = form_body(
        [("spec", b"{}", False), ("bundle", b"x", True), ("image_archive", b"y" * 500, True)]
    )
    headers = {ARCHIVE_HEADER: declared} if declared is not None else {}
    with pytest.raises(error, match=message):
        parse(body, tmp_path, headers)


def test_a_second_bundle_part_is_refused(tmp_path: Path) -> None:
    body = form_body([("spec", b"{}", False), ("bundle", b"x", True), ("bundle", b"y", True)])
    with pytest.raises(InvalidRequest, match="more than one `bundle`"):
        parse(body, tmp_path)
