"""The client's signer: signs with a registered key, goes unsigned (saying why, once) without
one, and refuses a damaged key file before anything is sent."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from jobs.signed_actions import decision_statement, publish_statement
from jobs.user_keys import public_key_text, verify_statement
from runner.client.api import Client
from runner.client.config import ClientEnv
from runner.client.keys import create_key
from runner.client.signing import Signer
from runner.errors import KeyFileError

JOB = {
    "id": "job1",
    "code_digest": "sha256:" + "1" * 64,
    "image_id": "sha256:" + "2" * 64,
    "dataset_digest": "sha256:" + "3" * 64,
    "params_digest": "sha256:" + "4" * 64,
}


def _build(origin: str, user: str):
    return decision_statement(origin, user, JOB, "approve", "ok")


def _signer(tmp_path: Path, heard: list[str]) -> Signer:
    return Signer(ClientEnv(config=tmp_path / "config.json"), on_unsigned=heard.append)


def test_a_registered_key_signs_the_statement_for_the_servers_origin(tmp_path):
    heard: list[str] = []
    signer = _signer(tmp_path, heard)
    key = create_key(signer.path)
    keys = [{"public_key": public_key_text(key), "revoked": None}]
    envelope = signer.envelope(lambda: ("olga", "c2d.test/log", keys), _build)
    assert envelope is not None
    assert envelope["statement"]["origin"] == "c2d.test/log"
    assert envelope["statement"]["user"] == "olga"
    assert verify_statement(public_key_text(key), envelope["statement"], envelope["signature"])
    assert heard == []


def test_without_a_key_file_actions_go_unsigned_and_it_is_said_once(tmp_path):
    heard: list[str] = []
    signer = _signer(tmp_path, heard)
    asked: list[bool] = []

    def identity():
        asked.append(True)
        return ("olga", "o", [])

    assert signer.envelope(identity, _build) is None
    assert signer.envelope(identity, _build) is None
    assert len(heard) == 1
    assert "not signed" in heard[0]
    assert "c2d login" in heard[0]
    assert asked == []  # no key: the server is not even asked who we are


def test_a_key_the_server_does_not_hold_for_this_user_is_not_used(tmp_path):
    heard: list[str] = []
    signer = _signer(tmp_path, heard)
    key = create_key(signer.path)
    revoked = [{"public_key": public_key_text(key), "revoked": 1.0}]
    other = [{"public_key": public_key_text(Ed25519PrivateKey.generate()), "revoked": None}]
    for keys in (revoked, other):
        assert signer.envelope(lambda k=keys: ("olga", "o", k), _build) is None
    assert len(heard) == 1
    assert "not a registered, unrevoked key of olga" in heard[0]


def test_a_damaged_key_file_stops_the_action_and_is_left_as_it_was(tmp_path):
    signer = _signer(tmp_path, [])
    signer.path.write_bytes(b"not a key\n")
    signer.path.chmod(0o600)
    with pytest.raises(KeyFileError, match="is not an Ed25519 private key"):
        signer.envelope(lambda: ("olga", "o", []), _build)
    assert signer.path.read_bytes() == b"not a key\n"


def test_a_dataset_registration_is_signed_over_the_hosts_statement_and_the_policy(tmp_path):
    """`c2d dataset add` hands the client the policy it publishes; the posted body carries
    the owner's ``c2d/publish`` envelope built from what the host signed and that policy."""
    signer = _signer(tmp_path, [])
    key = create_key(signer.path)
    keys = [{"public_key": public_key_text(key), "revoked": None}]
    host_statement = {"type": "c2d.host.dataset/1", "host": "h1", "digest": "sha256:" + "5" * 64}
    policy = {"owner": "olga", "host": "h1", "review_outputs": True}
    posted: list[dict] = []

    def answer(request: httpx.Request) -> httpx.Response:
        routes = {
            "/v1/me": {"name": "olga", "role": "owner"},
            "/v1/ledger/public-key": {"origin": "c2d.test/log", "public_key": ""},
            "/v1/me/keys": keys,
        }
        if request.method == "POST":
            posted.append(json.loads(request.content))
            return httpx.Response(201, json={"name": "iris"})
        return httpx.Response(200, json=routes[request.url.path])

    attestation = {"statement": host_statement, "signature": "c2ln", "profile": {}}
    with Client("http://c2d.test", "t", transport=httpx.MockTransport(answer), signer=signer) as c:
        c.add_dataset("iris", "h1", attestation, policy=policy)
        c.add_dataset("iris", "h1", attestation)  # no policy given: nothing to sign over
    signed = posted[0]["signed"]
    expected = publish_statement("c2d.test/log", "olga", "iris", host_statement, policy)
    assert signed["statement"] == expected.model_dump(mode="json")
    assert verify_statement(public_key_text(key), signed["statement"], signed["signature"])
    assert "signed" not in posted[1]
