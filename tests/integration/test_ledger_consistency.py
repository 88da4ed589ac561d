"""A researcher who kept a checkpoint catches a rewrite of history, over real HTTP.

A live installation (the API and a Celery worker as real processes, a real Redis, jobs run in
Docker): Bob logs in (pinning the ledger key), fetches a released job, which keeps the log's
checkpoint beside his config, and copies it aside. More jobs run; `c2d ledger verify --since`
says the log extends his copy, and the next fetch checks the same. Then the operator, holding
the database and the ledger key, rewrites an earlier entry, rebuilds the tree and re-signs a
checkpoint, so the log verifies on its own: `--since` fails naming both sizes, and the next
`c2d fetch` (and the Python client's) refuses and keeps Bob's checkpoint.
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from jobs.models import User
from ledger.merkle import verify_consistency
from runner.client import connect
from runner.errors import IntegrityError
from tests.kit.data import counting_job, make_dataset
from tests.kit.installation import Installation, installed
from tests.kit.procs import redis_db_url
from tests.kit.redis import flush_redis
from tests.kit.rewrite import rewrite_history

pytestmark = [pytest.mark.docker, pytest.mark.redis]

REDIS_DB = 1


@pytest.fixture(scope="module")
def install(tmp_path_factory, redis_url, job_image) -> Iterator[Installation]:
    url = redis_db_url(redis_url, REDIS_DB)
    flush_redis(url)
    with installed(tmp_path_factory.mktemp("consistency"), url) as made:
        made.start_server()
        made.start_worker()
        yield made
    flush_redis(url)


def released_job(install: Installation, owner: User, dataset: str, config: Path, at: Path) -> str:
    """A job submitted with `c2d submit` by the person logged in at ``config`` (signed: she
    holds a key, so her token alone cannot act) on ``dataset``, approved and run to release."""
    job = install.json("submit", str(counting_job(at, dataset)), config=config)
    install.ctx.service.approve(owner, job["id"])
    assert install.wait_final(job["id"]).state.value == "released", install.logs()
    return str(job["id"])


def test_a_kept_checkpoint_catches_a_rewritten_history(install, tmp_path):
    owner, _ = install.user("owner", "olga")
    _, bob_token = install.user("researcher", "bob")
    dataset = install.dataset(owner, make_dataset(tmp_path / "data"), review_outputs=False)
    config = tmp_path / "bob" / "config.json"
    login = install.c2d("login", install.url, "--with-token", config=config, stdin=bob_token)
    assert login.returncode == 0, login.stderr

    first = released_job(install, owner, dataset, config, tmp_path / "job1")
    install.json("fetch", first, "-o", str(tmp_path / "out1"), config=config)
    (kept_by_fetch,) = (config.parent / "checkpoints").iterdir()
    kept = tmp_path / "kept.checkpoint"
    shutil.copyfile(kept_by_fetch, kept)
    kept_size = int(kept.read_text().split("\n")[1])

    second = released_job(install, owner, dataset, config, tmp_path / "job2")
    facts = install.json("ledger", "verify", "--since", str(kept), config=config)
    assert facts["ok"] is True
    assert facts["kept_size"] == kept_size
    assert facts["size"] > kept_size
    assert facts["origin"] == install.settings.origin
    fetched = install.json("fetch", second, "-o", str(tmp_path / "out2"), config=config)
    assert fetched["kept_size"] == kept_size
    assert int(kept_by_fetch.read_text().split("\n")[1]) > kept_size

    # The operator rewrites the approval of the first job, then re-chains and re-signs.
    (seq,) = install.query(
        "SELECT seq FROM ledger_entries WHERE subject = ? AND type = 'job.approved'", first
    )[0]
    assert seq < kept_size
    rewrite_history(
        install.db,
        install.settings.key_path,
        install.settings.origin,
        seq=seq,
        body={"note": "approved by someone else entirely"},
    )
    whole = install.json("ledger", "verify", config=config)
    assert whole["ok"] is True  # the rewritten log is flawless on its own

    done = install.c2d("ledger", "verify", "--since", str(kept), "--json", config=config)
    assert done.returncode == 1, done.stderr
    facts = json.loads(done.stdout)
    assert facts["ok"] is False
    assert facts["kept_size"] == kept_size
    assert f"does not extend the checkpoint you kept at size {kept_size}" in done.stderr
    assert f"entries 0..{kept_size - 1}" in done.stderr

    kept_before = kept_by_fetch.read_bytes()
    refused = install.c2d("fetch", second, "-o", str(tmp_path / "out3"), config=config)
    assert refused.returncode == 1, refused.stderr
    assert "does not extend the checkpoint you kept" in refused.stderr
    assert str(kept_by_fetch) in refused.stderr
    assert not (tmp_path / "out3").exists()
    assert kept_by_fetch.read_bytes() == kept_before

    session = connect(environ={"C2D_CONFIG": str(config)})
    with session, pytest.raises(IntegrityError, match="does not extend the checkpoint you kept"):
        session.job(second).fetch(tmp_path / "out4")
    assert not (tmp_path / "out4").exists()
    assert kept_by_fetch.read_bytes() == kept_before


def test_the_consistency_route_serves_proofs_and_says_what_it_cannot(install):
    _, token = install.user("researcher", "rex")
    size = install.ledger_size()
    headers = {"Authorization": f"Bearer {token}"}

    def ask(first: int, second: int, **kw: str) -> httpx.Response:
        params = {"first": first, "second": second}
        return httpx.get(f"{install.url}/v1/ledger/consistency", params=params, timeout=30, **kw)

    served = ask(1, size, headers=headers)
    assert served.status_code == 200, served.text
    proof = [base64.b64decode(p) for p in served.json()["proof"]]
    with install.client(token) as client:
        verify_consistency(
            1, size, install.ctx.ledger.root(1), install.ctx.ledger.root(size), proof
        )
        assert client.consistency_proof(1, size) == proof
    assert ask(size, size, headers=headers).json()["proof"] == []
    for first, second, status in ((1, size + 1, 404), (size + 1, size, 404), (0, size, 422)):
        refused = ask(first, second, headers=headers)
        assert refused.status_code == status, refused.text
        assert refused.json()["error"]["message"]
    assert ask(1, size).status_code == 401
