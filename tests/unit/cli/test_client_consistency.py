"""A kept checkpoint against today's log: `check_since`, the kept-checkpoint files, and fetch.

The log is a real ``Ledger`` served over ``httpx.MockTransport`` the way the API serves it
(checkpoint, consistency proof, public key). A dishonest operator is ``tests.kit.rewrite``:
it holds the database and the signing key, rewrites history and re-signs, so the log verifies
on its own and only the kept checkpoint shows the rewrite. The RFC 9162 consistency vectors
run through the client's whole check too, each served as the server would serve it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobs.digests import outputs_digest
from ledger import Ledger, NotFound
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.keys import load_or_create_signing_key
from runner.client import Client
from runner.client.consistency import KeptCheckpoints, check_since, read_note
from runner.client.verify import fetch_verified
from runner.errors import ClientConfigError, IntegrityError, MissingFile
from tests.kit.rewrite import rewrite_history

ORIGIN = "c2d.test/consistency"
URL = "http://api.test"
JOB = "job-7"
MODEL = b"the model"
VECTORS = Path(__file__).parents[2] / "testdata" / "rfc9162-merkle" / "consistency"


class LogApi:
    """The ledger routes of the API over one real ledger, and one released job to fetch."""

    def __init__(self, folder: Path) -> None:
        self.db, self.key_path = folder / "c2d.db", folder / "ledger.key"
        self.ledger = Ledger(self.db, self.key_path, ORIGIN)
        self.asked: list[str] = []
        sha = "sha256:" + hashlib.sha256(MODEL).hexdigest()
        self.outputs = [{"name": "model.bin", "sha256": sha, "bytes": len(MODEL)}]

    def grow(self, n: int, who: str = "rita") -> None:
        for i in range(n):
            self.ledger.append("job.submitted", who, f"other-{who}-{i}", {"n": i})

    def release_job(self) -> None:
        self.ledger.append("job.submitted", "rita", JOB, {"code_digest": "sha256:" + "c" * 64})
        body = {"exit_code": 0, "outputs_digest": outputs_digest(self.outputs)}
        self.ledger.append("job.finished", "worker", JOB, body)
        self.ledger.append("job.released", "olga", JOB, {})

    def rewrite(self, **change: Any) -> str:
        """The operator rewrites the log in place with its own key (see tests.kit.rewrite)."""
        return rewrite_history(self.db, self.key_path, ORIGIN, **change)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.asked.append(path)
        if path == "/v1/ledger/checkpoint":
            return httpx.Response(200, text=self.ledger.checkpoint())
        if path == "/v1/ledger/public-key":
            key = base64.b64encode(self.ledger.public_key()).decode()
            return httpx.Response(200, json={"origin": ORIGIN, "public_key": key})
        if path == "/v1/ledger/consistency":
            first, second = (int(request.url.params[k]) for k in ("first", "second"))
            try:
                proof = self.ledger.consistency_proof(first, second)
            except NotFound as exc:
                return httpx.Response(
                    404, json={"error": {"kind": "not_found", "message": str(exc)}}
                )
            nodes = [base64.b64encode(p).decode() for p in proof]
            return httpx.Response(200, json={"first": first, "second": second, "proof": nodes})
        if path == f"/v1/jobs/{JOB}":
            return httpx.Response(
                200, json={"id": JOB, "state": "released", "outcome": {"outputs": self.outputs}}
            )
        if path == f"/v1/jobs/{JOB}/artifacts":
            return httpx.Response(200, json=self.outputs)
        if path == f"/v1/jobs/{JOB}/receipt":
            return httpx.Response(200, content=json.dumps(self.ledger.receipt(JOB)).encode())
        if path == f"/v1/jobs/{JOB}/artifacts/model.bin":
            digest = hashlib.sha256(MODEL).hexdigest()
            return httpx.Response(200, content=MODEL, headers={"X-C2D-SHA256": digest})
        return httpx.Response(404, json={"error": {"kind": "not_found", "message": path}})


@pytest.fixture
def api(tmp_path: Path) -> Iterator[LogApi]:
    served = LogApi(tmp_path)
    yield served
    served.ledger.close()


@pytest.fixture
def client(api: LogApi) -> Iterator[Client]:
    with Client(URL, "tok", 5, transport=httpx.MockTransport(api)) as made:
        yield made


def key(api: LogApi) -> bytes:
    return api.ledger.public_key()


def test_a_log_that_grew_extends_the_checkpoint_kept_before(api: LogApi, client: Client) -> None:
    api.grow(5)
    kept = api.ledger.checkpoint()
    api.grow(7)
    result = check_since(client, kept, key(api), origin=ORIGIN)
    assert result.ok, result.detail
    assert (result.kept_size, result.size) == (5, 12)
    assert result.root == api.ledger.root().hex()
    assert "extends the checkpoint you kept at size 5" in result.detail
    assert "/v1/ledger/consistency" in api.asked


def test_a_log_of_the_same_size_needs_no_proof(api: LogApi, client: Client) -> None:
    api.grow(4)
    kept = api.ledger.checkpoint()
    result = check_since(client, kept, key(api), origin=ORIGIN)
    assert result.ok
    assert result.size == result.kept_size == 4
    assert "/v1/ledger/consistency" not in api.asked


def test_an_earlier_entry_rewritten_and_resigned_fails_naming_both_sizes(
    api: LogApi, client: Client
) -> None:
    api.grow(5)
    kept = api.ledger.checkpoint()
    api.grow(7)
    api.rewrite(seq=2, body={"n": 99})
    assert api.ledger.verify().ok  # on its own, the rewritten log is flawless
    result = check_since(client, kept, key(api), origin=ORIGIN)
    assert not result.ok
    assert (result.kept_size, result.size) == (5, 12)
    assert "does not extend the checkpoint you kept at size 5" in result.detail
    assert "entries 0..4" in result.detail
    assert "rewritten or forked" in result.detail


def test_a_rewrite_of_the_same_size_fails(api: LogApi, client: Client) -> None:
    api.grow(6)
    kept = api.ledger.checkpoint()
    api.rewrite(seq=5, body={"n": "other"})
    result = check_since(client, kept, key(api), origin=ORIGIN)
    assert not result.ok
    assert result.size == result.kept_size == 6
    assert result.root != result.kept_root


def test_a_shorter_log_fails_naming_the_removed_entries(api: LogApi, client: Client) -> None:
    api.grow(12)
    kept = api.ledger.checkpoint()
    api.rewrite(keep=8)
    result = check_since(client, kept, key(api), origin=ORIGIN)
    assert not result.ok
    assert (result.kept_size, result.size) == (12, 8)
    assert "shrank" in result.detail
    assert "entries 8..11 were removed" in result.detail


def test_a_kept_checkpoint_of_another_key_or_log_proves_nothing(
    api: LogApi, client: Client, tmp_path: Path
) -> None:
    api.grow(3)
    stranger = load_or_create_signing_key(tmp_path / "other.key")
    forged = sign_checkpoint(Checkpoint(ORIGIN, 3, api.ledger.root()), stranger)
    with pytest.raises(ClientConfigError, match="does not verify against this log's key"):
        check_since(client, forged, key(api), origin=ORIGIN, where="mine.checkpoint")
    elsewhere = sign_checkpoint(Checkpoint("c2d.test/other", 3, api.ledger.root()), stranger)
    with pytest.raises(ClientConfigError, match=r"not 'c2d\.test/consistency'"):
        check_since(client, elsewhere, key(api), origin=ORIGIN)


def test_a_kept_checkpoint_whose_text_was_edited_does_not_verify(
    api: LogApi, client: Client
) -> None:
    api.grow(3)
    kept = api.ledger.checkpoint().replace(f"{ORIGIN}\n3\n", f"{ORIGIN}\n2\n", 1)
    with pytest.raises(ClientConfigError, match="altered or forged"):
        check_since(client, kept, key(api), origin=ORIGIN)


def test_checkpoint_files_that_are_missing_or_corrupt_are_named(tmp_path: Path) -> None:
    with pytest.raises(MissingFile, match="no checkpoint file"):
        read_note(tmp_path / "none.checkpoint")
    for name, data in {
        "empty": b"",
        "text": b"hello\n",
        "binary": b"\xff\xfe\x00",
        "huge": b"a\n" * 40_000,
    }.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ClientConfigError, match="is not a signed checkpoint"):
            read_note(path)


def _signable(path: Path) -> bool:
    """A case two checkpoints can carry: a kept log that is not empty (every log extends the
    empty one), and roots of 32 bytes (a checkpoint with another root does not parse)."""
    case = json.loads(path.read_text())
    roots = (base64.b64decode(case[k]) for k in ("root1", "root2"))
    return case["size1"] > 0 and all(len(r) == 32 for r in roots)


def _vector_cases() -> list[Path]:
    return [p for p in sorted(VECTORS.rglob("*.json")) if _signable(p)]


@pytest.mark.parametrize(
    "path", _vector_cases(), ids=[str(p.relative_to(VECTORS)) for p in _vector_cases()]
)
def test_rfc9162_consistency_vectors_through_the_client(path: Path, tmp_path: Path) -> None:
    """Each vector's two roots signed as checkpoints, its proof served by a server: the client
    says ok exactly when a correct verifier accepts the proof. A kept empty log proves nothing
    (every log extends it), and for equal sizes the client asks for no proof, so there the two
    roots alone decide."""
    case = json.loads(path.read_text())
    signer = load_or_create_signing_key(tmp_path / "ledger.key")
    public = signer.public_key().public_bytes_raw()

    def note(size: int, root: str) -> str:
        return sign_checkpoint(Checkpoint(ORIGIN, size, base64.b64decode(root)), signer)

    served = {"proof": case["proof"] or []}
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=served))
    with Client(URL, "tok", 5, transport=transport) as vector_client:
        result = check_since(
            vector_client,
            note(case["size1"], case["root1"]),
            public,
            current=note(case["size2"], case["root2"]),
        )
    if case["size1"] == case["size2"]:
        assert result.ok == (case["root1"] == case["root2"])
    else:
        assert result.ok == (not case["wantErr"]), result.detail


def test_kept_checkpoints_are_one_private_file_per_server_and_log(tmp_path: Path) -> None:
    store = KeptCheckpoints.beside(tmp_path / "c2d" / "config.json")
    paths = {
        store.path(URL, ORIGIN),
        store.path(URL + "/", ORIGIN),
        store.path("http://other.test", ORIGIN),
        store.path(URL, "c2d.test/else"),
    }
    assert len(paths) == 3  # a trailing slash names the same server
    assert store.load(URL, ORIGIN) is None
    signer = load_or_create_signing_key(tmp_path / "ledger.key")
    note = sign_checkpoint(Checkpoint(ORIGIN, 1, b"\x01" * 32), signer)
    saved = store.save(URL, ORIGIN, note)
    assert saved.parent == tmp_path / "c2d" / "checkpoints"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert stat.S_IMODE(saved.parent.stat().st_mode) == 0o700
    assert store.load(URL, ORIGIN) == note
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]  # no temporary left


def test_fetch_keeps_the_checkpoint_checks_it_next_time_and_refuses_a_rewrite(
    api: LogApi, client: Client, tmp_path: Path
) -> None:
    store = KeptCheckpoints(tmp_path / "kept")
    api.grow(3)
    api.release_job()
    public = key(api)
    first = fetch_verified(client, JOB, tmp_path / "one", key=public, kept=store)
    kept_path = store.path(URL, ORIGIN)
    assert read_note(kept_path).split("\n")[1] == str(first.log_size) == "6"
    assert first.kept_size is None

    api.grow(4)
    api.ledger.checkpoint()  # the next receipt carries the newer checkpoint
    second = fetch_verified(client, JOB, tmp_path / "two", key=public, kept=store)
    assert (second.kept_size, second.log_size) == (6, 10)
    assert read_note(kept_path).split("\n")[1] == "10"
    assert "/v1/ledger/consistency" in api.asked

    kept_before = kept_path.read_bytes()
    api.grow(2, who="sam")
    api.rewrite(seq=4, body={"exit_code": 0, "outputs_digest": "sha256:" + "0" * 64})
    with pytest.raises(IntegrityError, match="does not extend the checkpoint you kept at size 10"):
        fetch_verified(client, JOB, tmp_path / "three", key=public, kept=store)
    assert kept_path.read_bytes() == kept_before
    assert not (tmp_path / "three").exists()
    # The kept checkpoint still stands: the next fetch refuses too.
    with pytest.raises(IntegrityError, match="stays in"):
        fetch_verified(client, JOB, tmp_path / "three", key=public, kept=store)


def test_fetch_names_a_corrupt_kept_checkpoint_and_how_to_start_afresh(
    api: LogApi, client: Client, tmp_path: Path
) -> None:
    store = KeptCheckpoints(tmp_path / "kept")
    api.release_job()
    store.folder.mkdir()
    store.path(URL, ORIGIN).write_text("not a checkpoint\n")
    with pytest.raises(ClientConfigError, match=r"remove .* and fetch again"):
        fetch_verified(client, JOB, tmp_path / "out", key=key(api), kept=store)
    assert store.path(URL, ORIGIN).read_text() == "not a checkpoint\n"
    assert not (tmp_path / "out").exists()
