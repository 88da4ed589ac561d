"""People against a running API over real HTTP: listing users, revoking one, rotating tokens.

A revoked user's token is refused at the next request, on the API, on the web pages (whose
session ends with it) and on an events stream already open; a rotated token stops working at
once and the new one works, from the login `c2d token rotate` updated. Each change is a ledger
entry `c2d ledger show` lists, and `c2d ledger verify` still passes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from runner.control.install import ADMIN
from tests.kit.data import counting_job, make_dataset
from tests.kit.installation import Installation, installed
from tests.kit.procs import redis_db_url
from tests.kit.redis import flush_redis
from tests.kit.web import Visitor

pytestmark = [pytest.mark.docker, pytest.mark.redis]

REDIS_DB = 6


@pytest.fixture(scope="module")
def install(tmp_path_factory, redis_url, job_image) -> Iterator[Installation]:
    url = redis_db_url(redis_url, REDIS_DB)
    flush_redis(url)
    with installed(tmp_path_factory.mktemp("people"), url) as made:
        made.start_server()
        yield made
    flush_redis(url)


def me(install: Installation, token: str) -> httpx.Response:
    return httpx.get(
        f"{install.url}/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def refused(response: httpx.Response, says: str) -> str:
    """The message of a 401 answer, which must name ``says``."""
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    message = str(response.json()["error"]["message"])
    assert says in message, message
    return message


def ledger_entries(install: Installation) -> list[dict[str, object]]:
    return list(install.json("ledger", "show", token=install.admin_token))


def test_revoking_a_user_refuses_their_token_at_once_everywhere(install):
    name, token = install.add_user("owner")
    assert me(install, token).status_code == 200
    visitor = Visitor(install.url)
    try:
        assert visitor.sign_in(token).status_code == 303
        assert visitor.get("/ui/queue").status_code == 200
        revoked = install.json(
            "user", "revoke", name, "--reason", "left the project", token=install.admin_token
        )
        assert revoked["name"] == name
        assert revoked["revoked_by"] == ADMIN
        refused(me(install, token), f"'{name}' was revoked by {ADMIN}")
        # The web session ends with the token: the queue sends the person to sign in, and the
        # token no longer opens a session, saying why.
        page = visitor.get("/ui/queue")
        assert page.status_code == 303
        assert page.headers["location"].startswith("/ui/sign-in")
        again = visitor.sign_in(token)
        assert again.status_code == 401
        assert f"was revoked by {ADMIN}" in again.text
    finally:
        visitor.close()
    done = install.c2d("whoami", token=token)
    assert done.returncode == 4, done.stderr
    assert "revoked" in done.stderr
    entry = [e for e in ledger_entries(install) if e["subject"] == f"user:{name}"][-1]
    assert entry["type"] == "user.revoked"
    assert entry["actor"] == ADMIN
    assert entry["body"] == {"role": "owner", "reason": "left the project"}


def test_users_lists_everyone_for_admins_only(install):
    kept, kept_token = install.add_user("researcher")
    gone, _ = install.add_user("researcher")
    install.json("user", "revoke", gone, token=install.admin_token)
    listed = {u["name"]: u for u in install.json("users", token=install.admin_token)}
    assert listed[kept]["role"] == "researcher"
    assert listed[kept]["revoked"] is None
    assert listed[gone]["revoked_by"] == ADMIN
    assert listed[ADMIN]["role"] == "admin"
    assert all(u["key_fingerprints"] == [] for u in listed.values())
    table = install.c2d("users", token=install.admin_token)
    assert table.returncode == 0, table.stderr
    assert f"by {ADMIN}" in table.stderr
    denied = install.c2d("users", "--json", token=kept_token)
    assert denied.returncode == 4
    assert json.loads(denied.stdout)["error"]["kind"] == "not_allowed"


def test_a_revoked_name_the_last_admin_and_a_second_revoke_are_refused(install):
    name, _ = install.add_user("researcher")
    install.json("user", "revoke", name, token=install.admin_token)
    size = install.ledger_size()
    again = install.c2d("user", "add", name, "--role", "researcher", token=install.admin_token)
    assert again.returncode == 2
    assert "new name" in again.stderr
    twice = install.c2d("user", "revoke", name, token=install.admin_token)
    assert twice.returncode == 2
    assert "revoked already" in twice.stderr
    last = install.c2d("user", "revoke", ADMIN, token=install.admin_token)
    assert last.returncode == 2
    assert "last admin" in last.stderr
    assert me(install, install.admin_token).status_code == 200
    assert install.ledger_size() == size


def test_rotating_ones_own_token_updates_the_saved_login(install, tmp_path):
    name, old = install.add_user("researcher")
    config = tmp_path / "config.json"
    login = install.c2d("login", install.url, "--with-token", stdin=old, config=config)
    assert login.returncode == 0, login.stderr
    rotated = install.json("token", "rotate", config=config)
    assert rotated["name"] == name
    assert rotated["config"] == str(config)
    assert "token" not in rotated  # a secret: printed only when asked
    new = json.loads(config.read_text())["token"]
    assert new != old
    refused(me(install, old), "replaced by a new one")
    assert me(install, new).json()["name"] == name
    whoami = install.json("whoami", config=config)
    assert whoami["name"] == name
    entry = [e for e in ledger_entries(install) if e["subject"] == f"user:{name}"][-1]
    assert entry["type"] == "user.token_rotated"
    assert entry["actor"] == name
    assert entry["body"] == {}
    assert old not in json.dumps(ledger_entries(install))
    assert new not in json.dumps(ledger_entries(install))


def test_a_token_from_the_environment_is_rotated_only_if_it_can_be_printed(install):
    _, token = install.add_user("researcher")
    kept = install.c2d("token", "rotate", token=token)
    assert kept.returncode == 2
    assert "--print-token" in kept.stderr
    assert me(install, token).status_code == 200  # nothing was rotated
    printed = install.c2d("token", "rotate", "--print-token", token=token)
    assert printed.returncode == 0, printed.stderr
    assert "C2D_TOKEN" in printed.stderr
    new = printed.stdout.strip()
    assert me(install, new).status_code == 200
    refused(me(install, token), "replaced by a new one")


def test_admins_rotate_another_users_token_others_may_not(install):
    name, old = install.add_user("owner")
    other, other_token = install.add_user("researcher")
    denied = install.c2d("token", "rotate", "--user", name, token=other_token)
    assert denied.returncode == 4
    assert me(install, old).status_code == 200
    rotated = install.json("token", "rotate", "--user", name, token=install.admin_token)
    assert rotated["name"] == name
    refused(me(install, old), f"rotated by {ADMIN}")
    assert me(install, rotated["token"]).json()["name"] == name
    assert me(install, other_token).json()["name"] == other


def test_an_open_events_stream_closes_when_its_token_is_revoked(install, tmp_path: Path):
    owner, _ = install.user("owner", "olga")
    researcher, token = install.user("researcher", "rita")
    dataset = install.dataset(owner, make_dataset(tmp_path / "data"), review_outputs=True)
    job = install.submit_http(token, counting_job(tmp_path / "job", dataset))
    events: list[str] = []
    with httpx.stream(
        "GET",
        f"{install.url}/v1/jobs/{job['id']}/events",
        headers={"Authorization": f"Bearer {token}"},
        timeout=httpx.Timeout(30, read=60),
    ) as stream:
        for line in stream.iter_lines():
            if line.startswith("event:"):
                events.append(line.removeprefix("event:").strip())
                if len(events) == 1:
                    install.json("user", "revoke", researcher.name, token=install.admin_token)
    # The stream ended without the job ending: the client's next request hears why.
    assert events[0] == "job"
    assert "end" not in events
    refused(me(install, token), "revoked")


def test_the_ledger_with_revocations_and_rotations_verifies(install):
    name, _ = install.add_user("researcher")
    install.json("token", "rotate", "--user", name, token=install.admin_token)
    install.json("user", "revoke", name, token=install.admin_token)
    types = [e["type"] for e in ledger_entries(install) if e["subject"] == f"user:{name}"]
    assert types == ["user.added", "user.token_rotated", "user.revoked"]
    key = install.home / "ledger.key.pub"
    verified = install.json("ledger", "verify", "--key", str(key), token=install.admin_token)
    assert verified["ok"] is True
