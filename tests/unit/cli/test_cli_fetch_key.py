"""`c2d fetch` says which key the receipt was checked against, and claims a proof only when
that key is the caller's own (given with --key or pinned at login), not the server's word."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import runner.cli.fetch
from jobs.digests import outputs_digest
from ledger import Ledger
from runner.cli.main import run
from runner.client import Client
from runner.client.config import DEFAULT_URL, ClientConfig, save_config

JOB = "job-9"
MODEL = b"model bytes"


class FakeApi:
    """Serves one released job with its receipt and artifact from a real ledger."""

    def __init__(self, folder: Path) -> None:
        self.origin = "c2d.test/fetch"
        self.ledger = Ledger(folder / "c2d.db", folder / "ledger.key", self.origin)
        sha = "sha256:" + hashlib.sha256(MODEL).hexdigest()
        self.outputs = [{"name": "model.bin", "sha256": sha, "bytes": len(MODEL)}]
        self.ledger.append("job.submitted", "rita", JOB, {"code_digest": "sha256:" + "c" * 64})
        finished = {"exit_code": 0, "outputs_digest": outputs_digest(self.outputs)}
        self.ledger.append("job.finished", "worker", JOB, finished)
        self.ledger.append("job.released", "olga", JOB, {})
        self.receipt = json.dumps(self.ledger.receipt(JOB)).encode()

    def key_file(self, folder: Path) -> Path:
        path = folder / "ledger.key.pub"
        path.write_text(base64.b64encode(self.ledger.public_key()).decode())
        return path

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        job = {"id": JOB, "state": "released", "outcome": {"outputs": self.outputs}}
        served = {"public_key": base64.b64encode(self.ledger.public_key()).decode()}
        routes: dict[str, Any] = {
            f"/v1/jobs/{JOB}": job,
            "/v1/ledger/public-key": {**served, "origin": self.origin},
            f"/v1/jobs/{JOB}/artifacts": self.outputs,
        }
        if path in routes:
            return httpx.Response(200, json=routes[path])
        if path == f"/v1/jobs/{JOB}/receipt":
            return httpx.Response(200, content=self.receipt)
        if path == f"/v1/jobs/{JOB}/artifacts/model.bin":
            digest = hashlib.sha256(MODEL).hexdigest()
            return httpx.Response(200, content=MODEL, headers={"X-C2D-SHA256": digest})
        return httpx.Response(404, json={"error": {"kind": "not_found", "message": path}})


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeApi]:
    for name in ("C2D_URL", "C2D_TOKEN", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("C2D_CONFIG", str(tmp_path / "no-config.json"))
    monkeypatch.setenv("C2D_TOKEN", "tok")
    fake = FakeApi(tmp_path)
    monkeypatch.setattr(
        runner.cli.fetch,
        "connect",
        lambda ctx, out: Client("http://api.test", "tok", 5, transport=httpx.MockTransport(fake)),
    )
    yield fake
    fake.ledger.close()


def _fetch(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[dict, str]:
    out = tmp_path / "fetched"
    assert run(["fetch", JOB, "-o", str(out), "--json", *extra]) == 0
    captured = capsys.readouterr()
    assert (out / "model.bin").read_bytes() == MODEL
    return json.loads(captured.out), captured.err


def test_without_a_pinned_key_fetch_says_it_trusted_the_servers_key(api, tmp_path, capsys):
    document, said = _fetch(tmp_path, capsys)
    assert document["key"] == "served"
    assert "verifies against the log key" not in said
    assert "checked only against the ledger key this server sent" in said
    assert "proves nothing" in said
    assert "c2d login URL --with-token --key FILE" in said


def test_with_key_given_fetch_says_it_verifies_against_the_log_key(api, tmp_path, capsys):
    document, said = _fetch(tmp_path, capsys, "--key", str(api.key_file(tmp_path)))
    assert document["key"] == "given"
    assert "the receipt verifies against the log key given with --key" in said
    assert "proves nothing" not in said


def test_with_a_key_pinned_at_login_fetch_says_so(api, tmp_path, capsys, monkeypatch):
    config = tmp_path / "config.json"
    pinned = base64.b64encode(api.ledger.public_key()).decode()
    save_config(config, ClientConfig(url=DEFAULT_URL, token="tok", public_key=pinned))
    monkeypatch.setenv("C2D_CONFIG", str(config))
    monkeypatch.delenv("C2D_TOKEN")
    document, said = _fetch(tmp_path, capsys)
    assert document["key"] == "pinned"
    assert "the receipt verifies against the log key pinned at login" in said
    assert "proves nothing" not in said
