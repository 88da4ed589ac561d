"""People's signing keys against a running API over real HTTP, through the `c2d` command.

`c2d login` makes the person's key on their machine (mode 0600, beside the saved login) and
registers it; `c2d key rotate` and `c2d key revoke` show in `c2d key list`, in `c2d users` and
in the ledger, which still verifies. A registration signed by another key, or a key file that
is missing or damaged, is refused with a message that says what to do, and changes nothing.
"""

from __future__ import annotations

import base64
import json
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from jobs.user_keys import UserKeyStatement, public_key_text, sign_statement
from runner.control.install import ADMIN
from tests.kit.installation import Installation, installed
from tests.kit.redis import RedisServer

pytestmark = [pytest.mark.redis]


@pytest.fixture(scope="module")
def install(tmp_path_factory) -> Iterator[Installation]:
    # A Redis of its own: every database number of the shared one belongs to another module.
    redis_server = RedisServer(tmp_path_factory.mktemp("keys-redis"), persistent=False)
    redis_server.start()
    try:
        with installed(tmp_path_factory.mktemp("keys"), redis_server.url) as made:
            made.start_server()
            yield made
    finally:
        redis_server.stop()


def login(install: Installation, token: str, config: Path, expect: int = 0) -> dict:
    done = install.c2d("login", install.url, "--with-token", "--json", stdin=token, config=config)
    assert done.returncode == expect, done.stderr
    return json.loads(done.stdout)


def entries_about(install: Installation, name: str) -> list[dict]:
    shown = install.json("ledger", "show", token=install.admin_token)
    return [e for e in shown if e["subject"] == f"user:{name}"]


def test_login_makes_a_private_key_and_registers_it_once(install, tmp_path):
    name, token = install.add_user("researcher")
    config = tmp_path / "config.json"
    first = login(install, token, config)
    key_file = tmp_path / "config.key"
    assert first["signing_key"]["key_file"] == str(key_file)
    assert first["signing_key"]["done"] == "created"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in key_file.read_bytes()
    fingerprint = first["signing_key"]["fingerprint"]
    again = login(install, token, config)  # a second login keeps the same key
    assert again["signing_key"] == {**first["signing_key"], "done": "kept"}
    (entry,) = [e for e in entries_about(install, name) if e["type"] == "user.key"]
    assert entry["actor"] == name
    assert entry["body"]["fingerprint"] == fingerprint
    assert entry["body"]["statement"]["user"] == name
    listed = install.json("key", "list", config=config)
    assert [k["fingerprint"] for k in listed] == [fingerprint]
    assert listed[0]["revoked"] is None
    users = {u["name"]: u for u in install.json("users", token=install.admin_token)}
    assert users[name]["key_fingerprints"] == [fingerprint]


def test_rotate_and_revoke_show_in_the_list_and_the_ledger_which_verifies(install, tmp_path):
    name, token = install.add_user("owner")
    config = tmp_path / "config.json"
    old = login(install, token, config)["signing_key"]["fingerprint"]
    old_pem = (tmp_path / "config.key").read_bytes()
    rotated = install.json("key", "rotate", config=config)
    assert rotated["replaced"] == old
    assert (tmp_path / "config.key").read_bytes() != old_pem
    assert not (tmp_path / "config.key.new").exists()
    new = rotated["fingerprint"]
    listed = {k["fingerprint"]: k for k in install.json("key", "list", config=config)}
    assert listed[old]["revoked_by"] == name
    assert listed[new]["revoked"] is None
    table = install.c2d("key", "list", config=config)
    assert f"* {new}" in table.stderr, table.stderr  # the key this machine holds
    # An admin revokes the new key; it stays listed, revoked, and login will not reuse it.
    install.json("key", "revoke", new, "--reason", "laptop lost", token=install.admin_token)
    listed = {k["fingerprint"]: k for k in install.json("key", "list", config=config)}
    assert listed[new]["revoked_by"] == ADMIN
    refused = install.c2d("login", install.url, "--with-token", stdin=token, config=config)
    assert refused.returncode == 2
    assert "was revoked" in refused.stderr
    assert "Move the file away" in refused.stderr
    types = [(e["type"], e["body"].get("fingerprint")) for e in entries_about(install, name)]
    assert types[1:] == [
        ("user.key", old),
        ("user.key", new),
        ("user.key_revoked", old),
        ("user.key_revoked", new),
    ]
    key = install.home / "ledger.key.pub"
    verified = install.json("ledger", "verify", "--key", str(key), token=install.admin_token)
    assert verified["ok"] is True


def test_a_registration_signed_by_another_key_is_refused_clearly(install):
    name, token = install.add_user("researcher")
    origin = httpx.get(f"{install.url}/v1/health", timeout=30).json()["origin"]
    key, thief = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    statement = UserKeyStatement(user=name, origin=origin, public_key=public_key_text(key))
    forged, _ = sign_statement(thief, statement)
    size = len(install.json("ledger", "show", token=install.admin_token))
    answer = httpx.post(
        f"{install.url}/v1/me/keys",
        json={"public_key": public_key_text(key), "signature": forged},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert answer.status_code == 403, answer.text
    message = answer.json()["error"]["message"]
    assert "does not verify" in message
    assert "nothing was registered" in message
    assert len(install.json("ledger", "show", token=install.admin_token)) == size
    # The same statement signed by the key itself is accepted.
    good, fingerprint = sign_statement(key, statement)
    accepted = httpx.post(
        f"{install.url}/v1/me/keys",
        json={"public_key": public_key_text(key), "signature": good},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["fingerprint"] == fingerprint
    assert base64.b64decode(accepted.json()["public_key"]) == key.public_key().public_bytes_raw()


def test_a_damaged_or_missing_key_file_is_refused_and_left_as_it_was(install, tmp_path):
    _name, token = install.add_user("researcher")
    config = tmp_path / "config.json"
    key_file = tmp_path / "config.key"
    key_file.write_bytes(b"not a key\n")
    key_file.chmod(0o600)
    size = len(install.json("ledger", "show", token=install.admin_token))
    refused = install.c2d("login", install.url, "--with-token", stdin=token, config=config)
    assert refused.returncode == 2, refused.stderr
    assert "is not an Ed25519 private key" in refused.stderr
    assert "c2d login" in refused.stderr
    assert key_file.read_bytes() == b"not a key\n"
    assert not config.exists()  # nothing saved
    assert len(install.json("ledger", "show", token=install.admin_token)) == size
    key_file.unlink()
    missing = install.c2d("key", "rotate", token=token, config=config)
    assert missing.returncode == 2
    assert "there is no signing key" in missing.stderr
    assert "c2d login" in missing.stderr
    assert not key_file.exists()
    assert install.json("key", "list", token=token, config=config) == []
