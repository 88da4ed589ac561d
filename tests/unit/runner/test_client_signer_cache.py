"""The signer keeps who it is and that its key is registered, per login: a second signed action
asks the server nothing more, and a key revoked since is refused clearly, never sent unsigned.

A fake API behind httpx's MockTransport counts every request; the key and signatures are real.
"""

from __future__ import annotations

import json
import stat
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobs.user_keys import key_fingerprint, public_key_text, verify_statement
from runner.cli.main import run
from runner.client import Client, signer_cache
from runner.client.config import ClientConfig, ClientEnv, save_config
from runner.client.keys import create_key
from runner.client.signing import Signer
from runner.errors import ApiError, SigningKeyRefused

URL = "http://api.test"
ORIGIN = "c2d.test/log"
JOB = {
    "id": "job1",
    "state": "pending",
    "code_digest": "sha256:" + "1" * 64,
    "image_id": "sha256:" + "2" * 64,
    "dataset_digest": "sha256:" + "3" * 64,
    "params_digest": "sha256:" + "4" * 64,
}


class FakeApi:
    """The routes a signed approval touches; refuses a signed one whose key is revoked,
    with the server's own words (``jobs.signed_actions.check_signed``)."""

    def __init__(self, public_key: str) -> None:
        self.public_key = public_key
        self.revoked = False
        self.requests: Counter[str] = Counter()
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        route = f"{request.method} {request.url.path}"
        self.requests[route] += 1
        if route == "GET /v1/me":
            return httpx.Response(200, json={"name": "olga", "role": "owner"})
        if route == "GET /v1/ledger/public-key":
            return httpx.Response(200, json={"origin": ORIGIN, "public_key": "a2V5"})
        if route == "GET /v1/me/keys":
            revoked = 1.0 if self.revoked else None
            return httpx.Response(200, json=[{"public_key": self.public_key, "revoked": revoked}])
        if route == "GET /v1/jobs/job1":
            return httpx.Response(200, json=JOB)
        if route == "POST /v1/jobs/job1/approve":
            body = json.loads(request.content)
            self.bodies.append(body)
            signed = body.get("signed")
            if signed is not None and self.revoked:
                message = (
                    f"key {signed['key']} is not a registered, unrevoked key of olga; nothing "
                    "was recorded. `c2d key list` shows your keys; `c2d login` registers a "
                    "new one"
                )
                error = {"kind": "not_allowed", "message": message}
                return httpx.Response(403, json={"error": error})
            return httpx.Response(200, json=JOB | {"state": "approved"})
        return httpx.Response(404, json={"error": {"kind": "not_found", "message": route}})

    def identity_asks(self) -> int:
        routes = ("GET /v1/me", "GET /v1/ledger/public-key", "GET /v1/me/keys")
        return sum(self.requests[r] for r in routes)


@pytest.fixture
def env(tmp_path: Path) -> ClientEnv:
    return ClientEnv(config=tmp_path / "c2d" / "config.json")


@pytest.fixture
def api(env: ClientEnv) -> FakeApi:
    key = create_key(Signer(env).path)
    return FakeApi(public_key_text(key))


TOKEN = "tok"


def _client(env: ClientEnv, api: FakeApi, heard: list[str], token: str = TOKEN) -> Client:
    signer = Signer(env, on_unsigned=heard.append)
    return Client(URL, token, 5, transport=httpx.MockTransport(api), signer=signer)


def test_a_second_signed_action_asks_the_server_nothing_more(env: ClientEnv, api: FakeApi) -> None:
    heard: list[str] = []
    with _client(env, api, heard) as client:
        client.approve("job1")
    assert api.identity_asks() == 3
    # A later command (a new process: a new Client and Signer) signs from what was kept.
    with _client(env, api, heard) as client:
        client.approve("job1")
    with _client(env, api, heard) as client:
        client.approve("job1")
    assert api.identity_asks() == 3
    assert api.requests["GET /v1/jobs/job1"] == 3  # the job read is what gets signed
    assert heard == []
    for body in api.bodies:
        assert body["signed"]["statement"]["user"] == "olga"
        assert body["signed"]["statement"]["origin"] == ORIGIN
        assert verify_statement(
            api.public_key, body["signed"]["statement"], body["signed"]["signature"]
        )


def test_the_cache_is_private_and_holds_no_token(env: ClientEnv, api: FakeApi) -> None:
    with _client(env, api, [], token="secret-token-123") as client:
        client.approve("job1")
    path = signer_cache.cache_path(env)
    assert path.parent == Signer(env).path.parent
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert "secret-token-123" not in text
    assert key_fingerprint(api.public_key) in text


@pytest.mark.parametrize(("url", "token"), [("http://other.test", "tok"), (URL, "other-token")])
def test_another_server_or_token_asks_again(
    env: ClientEnv, api: FakeApi, url: str, token: str
) -> None:
    with _client(env, api, []) as client:
        client.approve("job1")
    signer = Signer(env)
    with Client(url, token, 5, transport=httpx.MockTransport(api), signer=signer) as client:
        client.approve("job1")
    assert api.identity_asks() == 6


def test_a_key_revoked_since_is_refused_clearly_not_sent_unsigned(
    env: ClientEnv, api: FakeApi
) -> None:
    heard: list[str] = []
    with _client(env, api, heard) as client:
        client.approve("job1")
    api.revoked = True  # from another machine: this one's cache still says the key is good
    with _client(env, api, heard) as client, pytest.raises(SigningKeyRefused) as caught:
        client.approve("job1")
    message = str(caught.value)
    assert "nothing was recorded" in message
    assert f"the key in {Signer(env).path} is not a registered, unrevoked key of olga" in message
    assert "`c2d login` registers a key for this user" in message
    assert caught.value.kind == "not_allowed"
    assert [("signed" in body) for body in api.bodies] == [True, True]  # no unsigned retry
    assert heard == []
    # The record is gone: the next action asks the server again, and (the key being revoked)
    # goes unsigned saying so, as without a cache.
    with _client(env, api, heard) as client:
        client.approve("job1")
    assert api.identity_asks() == 6
    assert "signed" not in api.bodies[-1]
    assert len(heard) == 1
    assert f"not signed: the key in {Signer(env).path} is not a registered" in heard[0]


def test_other_refusals_leave_the_cache_alone(env: ClientEnv, api: FakeApi) -> None:
    with _client(env, api, []) as client:
        client.approve("job1")

    def owner_only(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            error = {"kind": "not_allowed", "message": "only the dataset's owner may approve"}
            return httpx.Response(403, json={"error": error})
        return api(request)

    signer = Signer(env)
    with (
        Client(URL, "tok", 5, transport=httpx.MockTransport(owner_only), signer=signer) as c,
        pytest.raises(ApiError, match="only the dataset's owner") as caught,
    ):
        c.approve("job1")
    assert not isinstance(caught.value, SigningKeyRefused)
    fingerprint = key_fingerprint(api.public_key)
    assert signer_cache.recall(env, URL, "tok", fingerprint) is not None


def test_a_cache_others_can_read_or_a_damaged_one_is_ignored(env: ClientEnv, api: FakeApi) -> None:
    with _client(env, api, []) as client:
        client.approve("job1")
    path = signer_cache.cache_path(env)
    fingerprint = key_fingerprint(api.public_key)
    path.chmod(0o644)
    assert signer_cache.recall(env, URL, "tok", fingerprint) is None
    path.write_text("{not json")
    path.chmod(0o600)
    assert signer_cache.recall(env, URL, "tok", fingerprint) is None
    with _client(env, api, []) as client:
        client.approve("job1")  # asks again and writes a good file over the damaged one
    assert api.identity_asks() == 6
    assert signer_cache.recall(env, URL, "tok", fingerprint) is not None


# -- the commands that change the login or the keys drop every record ----------------------


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ClientEnv:
    for name in ("C2D_URL", "C2D_TOKEN", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "c2d" / "config.json"
    monkeypatch.setenv("C2D_CONFIG", str(config))
    save_config(config, ClientConfig(url=URL, token="tok"))
    env = ClientEnv(config=config)
    signer_cache.remember(
        env, URL, "tok", "ed25519:" + "0" * 32, signer_cache.Known("olga", ORIGIN)
    )
    assert signer_cache.cache_path(env).exists()
    return env


def test_logout_drops_the_records(cli_env: ClientEnv) -> None:
    assert run(["logout", "--json"]) == 0
    assert not signer_cache.cache_path(cli_env).exists()


def test_key_revoke_drops_the_records(cli_env: ClientEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    revoked = {"fingerprint": "ed25519:" + "0" * 32, "user": "olga", "public_key": "a2V5"}
    monkeypatch.setattr(Client, "revoke_key", lambda self, fp, reason="": revoked)
    assert run(["key", "revoke", revoked["fingerprint"], "--json"]) == 0
    assert not signer_cache.cache_path(cli_env).exists()


def test_key_rotate_drops_the_records_even_when_it_fails(
    cli_env: ClientEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner.client import keys

    def refused(*args: object) -> None:
        raise ApiError("failed", "the server failed half way", 500)

    monkeypatch.setattr(Client, "me", lambda self: {"name": "olga", "role": "owner"})
    monkeypatch.setattr(Client, "public_key", lambda self: {"origin": ORIGIN})
    monkeypatch.setattr(keys, "rotate", refused)
    assert run(["key", "rotate", "--json"]) != 0
    assert not signer_cache.cache_path(cli_env).exists()


def test_login_drops_the_records(
    cli_env: ClientEnv, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from runner.client import keys

    monkeypatch.setattr(Client, "me", lambda self: {"name": "olga", "role": "owner"})
    monkeypatch.setattr(Client, "public_key", lambda self: {"origin": ORIGIN, "public_key": "a2V5"})
    outcome = keys.KeyOutcome("ed25519:" + "1" * 32, tmp_path / "k", "kept")
    monkeypatch.setattr(keys, "ensure_registered", lambda *args: outcome)
    assert run(["login", URL, "new-token", "--json"]) == 0
    assert not signer_cache.cache_path(cli_env).exists()
