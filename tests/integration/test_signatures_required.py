"""The product's default, over real HTTP: the server records no unsigned action.

An installation as `c2d init` makes it (``C2D_SIGNATURES`` unset, so ``required``) with its
API running. An owner who has not logged in cannot register a dataset (`c2d dataset add` exits
with the server's 403); logged in, her registration is signed. A researcher who has not logged
in cannot submit (`c2d submit` exits with the
server's 403, which says how to get a key) and nothing is recorded; logged in, she can. An
owner holding a key cannot approve with her bare token over the API, even though the token is
valid. At the end the ledger holds no unsigned action.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.kit.data import counting_job, make_dataset
from tests.kit.installation import Installation, installed
from tests.kit.redis import RedisServer

pytestmark = [pytest.mark.redis]


@pytest.fixture(scope="module")
def install(tmp_path_factory) -> Iterator[Installation]:
    redis_server = RedisServer(tmp_path_factory.mktemp("required-redis"), persistent=False)
    redis_server.start()
    try:
        root = tmp_path_factory.mktemp("required")
        with installed(root, redis_server.url, signatures="required") as made:
            made.start_server()
            yield made
    finally:
        redis_server.stop()


def login(install: Installation, token: str, config: Path) -> None:
    done = install.c2d("login", install.url, "--with-token", stdin=token, config=config)
    assert done.returncode == 0, done.stderr


def test_nobody_acts_unsigned_and_a_key_holders_token_alone_acts_for_nobody(install, tmp_path):
    _, olga_token = install.user("owner", "olga")
    _, bob_token = install.user("researcher", "bob")
    bob_config, olga_config = tmp_path / "bob" / "config.json", tmp_path / "olga" / "config.json"
    data = make_dataset(tmp_path / "data")
    size = install.ledger_size()

    # Publishing a dataset is an action too: unsigned it is refused, then signed after login.
    unsigned = install.dataset_add(olga_token, "rows", data)
    assert unsigned.returncode != 0
    assert "only signed actions" in json.loads(unsigned.stdout)["error"]["message"]
    assert install.ledger_size() == size
    login(install, olga_token, olga_config)
    added = install.dataset_add(olga_token, "rows", data, config=olga_config)
    assert added.returncode == 0, added.stderr
    dataset = json.loads(added.stdout)["name"]
    (published,) = install.entries(f"dataset:{dataset}")
    assert published["body"]["signed"]["statement"]["type"] == "c2d/publish"
    job_dir = counting_job(tmp_path / "job", dataset)
    size = install.ledger_size()

    refused = install.c2d("submit", str(job_dir), "--json", token=bob_token)
    assert refused.returncode != 0
    error = json.loads(refused.stdout)["error"]
    assert "only signed actions" in error["message"]
    assert "c2d login" in error["message"]
    assert install.job_ids() == []
    assert install.ledger_size() == size

    login(install, bob_token, bob_config)
    job = install.json("submit", str(job_dir), config=bob_config)
    submitted = [e for e in install.entries(job["id"]) if e["type"] == "job.submitted"]
    assert submitted[0]["body"]["signed"]["statement"]["user"].startswith("bob-")

    size = install.ledger_size()
    bare = httpx.post(
        f"{install.url}/v1/jobs/{job['id']}/approve",
        json={"note": "ok"},
        headers={"Authorization": f"Bearer {olga_token}"},
        timeout=30,
    )
    assert bare.status_code == 403, bare.text
    assert "a token alone cannot act" in bare.json()["error"]["message"]
    assert install.state(job["id"]) == "pending"
    assert install.ledger_size() == size
    approved = install.c2d("approve", job["id"], config=olga_config)
    assert approved.returncode == 0, approved.stderr
    assert install.state(job["id"]) in {"approved", "running", "succeeded"}

    verified = install.json("ledger", "verify", config=olga_config)
    assert verified["ok"], verified
    assert verified["unsigned"] == 0, verified
