"""People sign what they do, over real HTTP, with the API, a Celery worker and Docker running.

Bob (researcher) and Olga (owner) log in, which makes and registers their keys. Olga publishes
her dataset with `c2d dataset add` on the data host, Bob submits with `c2d submit`, Olga
approves with `c2d approve`, the job runs in Docker, Olga releases with `c2d release`: the
entries `dataset.registered`, `job.submitted`, `job.approved` and `job.released` carry signed
envelopes that verify with the public keys of their `user.key` entries, read from the ledger
alone, and the job's receipt says who published its data on which host. An approval posted
with Olga's token but signed by a key that is not hers is refused (403) and changes nothing in
the store or the ledger. Someone with no key file acts unsigned, and the CLI says so once. A
registration the operator writes with the log's key and database, but without Olga's key,
fails `c2d ledger verify` naming the entry.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from jobs.digests import canonical_digest
from jobs.signed_actions import decision_statement
from jobs.user_keys import key_fingerprint, public_key_text, sign_statement, verify_statement
from ledger import Ledger
from tests.kit.data import counting_job, make_dataset
from tests.kit.installation import Installation, installed
from tests.kit.redis import RedisServer

pytestmark = [pytest.mark.docker, pytest.mark.redis]


@pytest.fixture(scope="module")
def install(tmp_path_factory, job_image) -> Iterator[Installation]:
    # A Redis of its own: every database number of the shared one belongs to another module.
    redis_server = RedisServer(tmp_path_factory.mktemp("signed-redis"), persistent=False)
    redis_server.start()
    try:
        with installed(tmp_path_factory.mktemp("signed"), redis_server.url) as made:
            made.start_server()
            made.start_worker()
            yield made
    finally:
        redis_server.stop()


def login(install: Installation, token: str, config: Path) -> str:
    """`c2d login` as the holder of ``token``; the fingerprint of the key it registered."""
    done = install.c2d("login", install.url, "--with-token", "--json", stdin=token, config=config)
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)["signing_key"]["fingerprint"])


def registered_keys(install: Installation) -> dict[str, tuple[str, str]]:
    """Every ``user.key`` entry in the ledger: fingerprint -> (user, public key)."""
    rows = install.query("SELECT canonical FROM ledger_entries WHERE type = 'user.key'")
    entries = [json.loads(bytes(r[0])) for r in rows]
    return {e["body"]["fingerprint"]: (e["actor"], e["body"]["public_key"]) for e in entries}


def entry(install: Installation, job_id: str, kind: str) -> dict[str, Any]:
    (found,) = [e for e in install.entries(job_id) if e["type"] == kind]
    return found


def publish(install: Installation, token: str, config: Path, folder: Path) -> str:
    """`c2d dataset add` on the local data host as the holder of ``token`` with the key of
    ``config``; the dataset's name."""
    name = f"ds-{uuid.uuid4().hex[:6]}"
    added = install.dataset_add(token, name, make_dataset(folder), config=config)
    assert added.returncode == 0, added.stderr
    assert "not signed" not in added.stderr
    return name


def registration(install: Installation, dataset: str) -> dict[str, Any]:
    return entry(install, f"dataset:{dataset}", "dataset.registered")


def test_signed_submit_approve_and_release_verify_from_the_ledger_alone(install, tmp_path):
    owner, olga_token = install.user("owner", "olga")
    bob, bob_token = install.user("researcher", "bob")
    olga_config, bob_config = tmp_path / "olga" / "config.json", tmp_path / "bob" / "config.json"
    olga_key, bob_key = (
        login(install, olga_token, olga_config),
        login(install, bob_token, bob_config),
    )
    dataset = publish(install, olga_token, olga_config, tmp_path / "data")
    published = registration(install, dataset)
    assert published["actor"] == owner.name
    statement = published["body"]["signed"]["statement"]
    assert (statement["type"], statement["dataset"]) == ("c2d/publish", dataset)
    assert statement["digest"] == published["body"]["digest"]
    assert statement["host_statement"] == published["body"]["host_statement_digest"]
    assert statement["policy"] == canonical_digest(published["body"]["policy"])

    job_dir = counting_job(tmp_path / "job", dataset)
    job = install.json("submit", str(job_dir), config=bob_config)
    approved = install.c2d("approve", job["id"], "--note", "counts rows", config=olga_config)
    assert approved.returncode == 0, approved.stderr
    assert "not signed" not in approved.stderr
    assert install.wait_final(job["id"]).state.value == "succeeded", install.logs()
    install.json("release", job["id"], config=olga_config)
    assert install.state(job["id"]) == "released"

    keys = registered_keys(install)
    entries = {kind: entry(install, job["id"], kind) for kind in ("job.submitted", "job.approved")}
    entries |= {"job.released": entry(install, job["id"], "job.released")}
    entries["dataset.registered"] = published
    expected = {
        "dataset.registered": (owner.name, olga_key, "c2d/publish"),
        "job.submitted": (bob.name, bob_key, "c2d/submit"),
        "job.approved": (owner.name, olga_key, "c2d/decision"),
        "job.released": (owner.name, olga_key, "c2d/release"),
    }
    for kind, (who, fingerprint, statement_type) in expected.items():
        signed = entries[kind]["body"]["signed"]
        assert signed["key"] == fingerprint
        assert signed["statement"]["type"] == statement_type
        assert signed["statement"]["user"] == who
        assert signed["statement"]["origin"] == install.settings.origin
        holder, public = keys[fingerprint]
        assert holder == who
        assert verify_statement(public, signed["statement"], signed["signature"])
    approval = entry(install, job["id"], "job.approved")["body"]["signed"]["statement"]
    assert approval["note"] == "counts rows"
    assert approval["code_digest"] == install.load_job(job["id"]).code_digest
    outcome = install.load_job(job["id"]).outcome
    assert outcome is not None
    released = entry(install, job["id"], "job.released")["body"]["signed"]["statement"]
    assert released["outputs"] == sorted(
        ({"name": o.name, "digest": o.sha256} for o in outcome.outputs), key=lambda o: o["name"]
    )

    # The researcher's fetched receipt names every actor and the key each signed with, checked
    # offline against the key entries the receipt carries.
    out = tmp_path / "fetched"
    install.json("fetch", job["id"], "-o", str(out), config=bob_config)
    checked = install.json("receipt", "verify", str(out / "receipt.json"), config=bob_config)
    verdicts = {a["type"]: (a["verdict"], a["signer"], a["key"]) for a in checked["actions"]}
    assert verdicts["job.submitted"] == ("signed", bob.name, bob_key)
    assert verdicts["job.approved"] == ("signed", owner.name, olga_key)
    assert verdicts["job.released"] == ("signed", owner.name, olga_key)
    assert verdicts["job.finished"][0] == "signed"  # by the data host's key
    assert verdicts["dataset.registered"] == ("signed", owner.name, olga_key)
    body = published["body"]
    assert checked["publication"] == {
        "seq": published["seq"],
        "dataset": dataset,
        "digest": install.load_job(job["id"]).dataset_digest,
        "publisher": owner.name,
        "host": body["host"],
        "host_key": body["host_key"],
        "host_checked": True,
        "verdict": "signed",
        "key": olga_key,
    }
    told = install.c2d("receipt", "verify", str(out / "receipt.json"), config=bob_config)
    assert told.returncode == 0, told.stderr
    assert f"submitted by {bob.name} (key " in told.stdout + told.stderr
    assert f"approved by {owner.name} (key " in told.stdout + told.stderr
    assert (
        f"on dataset {dataset} (digest {body['digest'][:19]}…) published by {owner.name} (key "
        f"{olga_key[8:16]}…) on host {body['host']} (key {body['host_key'][8:16]}…); in log "
    ) in told.stderr


def test_a_forged_approval_is_refused_and_changes_nothing(install, tmp_path):
    owner, olga_token = install.user("owner", "olga")
    _, bob_token = install.user("researcher", "bob")
    dataset = install.dataset(owner, make_dataset(tmp_path / "data"))
    olga_key = login(install, olga_token, tmp_path / "olga" / "config.json")
    job = install.submit_http(bob_token, counting_job(tmp_path / "job", dataset))
    view = install.api_job(job["id"])
    statement = decision_statement(install.settings.origin, owner.name, view, "approve", "")
    thief = Ed25519PrivateKey.generate()
    signature, thief_key = sign_statement(thief, statement.model_dump(mode="json"))
    size = install.ledger_size()
    approvals = install.query("SELECT COUNT(*) FROM approvals")
    for key in (olga_key, thief_key):  # under her fingerprint, and under its own
        answer = httpx.post(
            f"{install.url}/v1/jobs/{job['id']}/approve",
            json={
                "signed": {
                    "statement": statement.model_dump(mode="json"),
                    "signature": signature,
                    "key": key,
                }
            },
            headers={"Authorization": f"Bearer {olga_token}"},
            timeout=30,
        )
        assert answer.status_code == 403, answer.text
        message = answer.json()["error"]["message"]
        assert key in message
        assert "nothing was recorded" in message
    assert key_fingerprint(public_key_text(thief)) == thief_key
    # Nothing but the job's dry run, which the data host may finish meanwhile, was logged.
    added = install.query("SELECT type FROM ledger_entries WHERE seq >= ?", size)
    assert {row[0] for row in added} <= {"job.dryrun"}, added
    assert install.query("SELECT COUNT(*) FROM approvals") == approvals
    assert install.state(job["id"]) == "pending"


def test_without_a_key_file_the_action_is_unsigned_and_the_cli_says_so_once(install, tmp_path):
    owner, olga_token = install.user("owner", "olga")
    _, bob_token = install.user("researcher", "bob")
    dataset = install.dataset(owner, make_dataset(tmp_path / "data"))
    job = install.submit_http(bob_token, counting_job(tmp_path / "job", dataset))
    done = install.c2d("approve", job["id"], token=olga_token)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("not signed") == 1, done.stderr
    assert "c2d login" in done.stderr
    assert "signed" not in entry(install, job["id"], "job.approved")["body"]


def test_a_key_revoked_elsewhere_is_refused_clearly_then_the_next_action_asks_again(
    install, tmp_path
):
    owner, _ = install.user("owner", "olga")
    bob, bob_token = install.user("researcher", "bob")
    dataset = install.dataset(owner, make_dataset(tmp_path / "data"))
    config = tmp_path / "bob" / "config.json"
    bob_key = login(install, bob_token, config)
    first = install.c2d("submit", str(counting_job(tmp_path / "a", dataset)), config=config)
    assert first.returncode == 0, first.stderr
    assert config.with_suffix(".signer.json").exists()  # who bob is, kept for his next action
    # An admin revokes bob's key from another machine: bob's client still thinks it good.
    install.json("key", "revoke", bob_key, "--reason", "laptop lost", token=install.admin_token)
    jobs = install.job_ids()
    refused = install.c2d("submit", str(counting_job(tmp_path / "b", dataset)), config=config)
    assert refused.returncode == 4, refused.stderr
    assert f"is not a registered, unrevoked key of {bob.name}" in refused.stderr
    assert "nothing was recorded" in refused.stderr
    # Not sent again unsigned behind his back: no job came of it. (The log itself may grow
    # meanwhile: the first job's dry run lands when the data host finishes it.)
    assert install.job_ids() == jobs
    # The kept answer is gone: the next action asks the server, and goes unsigned saying so.
    again = install.c2d("submit", str(counting_job(tmp_path / "c", dataset)), config=config)
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("not signed") == 1, again.stderr


def test_a_registration_forged_with_the_operators_key_fails_ledger_verify(install, tmp_path):
    """Last in the module: it leaves a forged entry in the installation's log."""
    owner, olga_token = install.user("owner", "olga")
    config = tmp_path / "olga" / "config.json"
    login(install, olga_token, config)
    dataset = publish(install, olga_token, config, tmp_path / "data")
    honest = registration(install, dataset)
    assert install.json("ledger", "verify", config=config)["ok"] is True
    # The operator, holding the log's key and database but not Olga's key, records that she
    # published other data, with her real signature copied from the honest entry.
    forged = {**honest["body"], "digest": "sha256:" + "0" * 64}
    ledger = Ledger(install.db, install.settings.key_path, install.settings.origin)
    try:
        seq = ledger.append("dataset.registered", owner.name, f"dataset:{dataset}", forged).seq
    finally:
        ledger.close()
    done = install.c2d("ledger", "verify", "--json", config=config)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert (report["ok"], report["first_bad"]) == (False, seq)
    assert f"entry {seq} (dataset.registered)" in report["detail"]
    assert "statement's digest is" in report["detail"]
