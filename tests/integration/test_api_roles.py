"""Who may do what, over real HTTP against `c2d server`: the full role matrix.

The cast: an admin, two data owners (olga owns the dataset, oscar does not), two researchers
(rita submits, rob is a stranger to her jobs), nobody (no token) and a wrong token. Refusals
are checked to change nothing; what is allowed is checked to work.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from jobs.models import Outcome, OutputFile
from tests.kit.data import counting_job, make_dataset
from tests.kit.installation import Installation, installed
from tests.kit.procs import redis_db_url
from tests.kit.redis import flush_redis

pytestmark = [pytest.mark.docker, pytest.mark.redis]

REDIS_DB = 10
WRONG = "not-a-token-anyone-holds"


@dataclass
class World:
    install: Installation
    tokens: dict[str, str | None]
    names: dict[str, str]
    dataset: str
    pending: str  # rita's job, pending
    succeeded: str  # rita's job, succeeded, outputs not yet released
    model: bytes

    def call(
        self, who: str, method: str, path: str, headers: dict[str, str] | None = None, **kw: Any
    ) -> httpx.Response:
        token = self.tokens[who]
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        url = self.install.url + path.format(p=self.pending, s=self.succeeded)
        return httpx.request(method, url, headers=sent, timeout=30, **kw)


@pytest.fixture(scope="module")
def world(tmp_path_factory, redis_url, job_image) -> Iterator[World]:
    url = redis_db_url(redis_url, REDIS_DB)
    flush_redis(url)
    root = tmp_path_factory.mktemp("roles")
    with installed(root, url) as install:
        install.start_server()
        olga, olga_t = install.user("owner", "olga")
        _, oscar_t = install.user("owner", "oscar")
        rita, rita_t = install.user("researcher", "rita")
        rob, rob_t = install.user("researcher", "rob")
        dataset = install.dataset(olga, make_dataset(root / "data"), review_outputs=True)
        pending = install.submit_http(rita_t, counting_job(root / "job1", dataset))["id"]
        succeeded = install.submit_http(rita_t, counting_job(root / "job2", dataset, sleep=1))["id"]

        # Run the second job's bookkeeping in-process (no worker in this module): approve,
        # claim and finish with outputs that really are in the artifact store.
        service, artifacts = install.ctx.service, install.ctx.artifacts
        service.approve(olga, succeeded)
        claim = service.claim(succeeded, "test@host:1", 60)
        model = b"model bytes " * 1000
        metrics = json.dumps({"acc": 0.9}).encode()
        outputs = [
            OutputFile(name=n, sha256=artifacts.put_bytes(d)[0], bytes=len(d))
            for n, d in (("metrics.json", metrics), ("model.bin", model))
        ]
        outcome = Outcome(
            succeeded=True,
            exit_code=0,
            reason="exited with code 0",
            duration_s=1.0,
            outputs=outputs,
            metrics={"acc": 0.9},
            log_digest=artifacts.put_bytes(b"epoch 1 done\n")[0],
        )
        service.finish(succeeded, claim.fence, outcome)
        # The copies the data host uploads for the owner's review (previews read only those
        # before release).
        for data in (metrics, model):
            install.ctx.review.put_bytes(data)
        yield World(
            install=install,
            tokens={
                "admin": install.admin_token,
                "olga": olga_t,
                "oscar": oscar_t,
                "rita": rita_t,
                "rob": rob_t,
                "nobody": None,
                "wrong": WRONG,
            },
            names={"olga": olga.name, "rita": rita.name, "rob": rob.name},
            dataset=dataset,
            pending=pending,
            succeeded=succeeded,
            model=model,
        )
    flush_redis(url)


# (who, method, path, json body, expected status); {p} = pending job, {s} = succeeded job.
# The shape of a dataset registration as a data host sends it (its content is never read: a
# researcher may not register at all).
ATTESTED = {
    "host": "local",
    "statement": {"type": "c2d.host.dataset/1", "digest": "sha256:" + "0" * 64},
    "signature": "AAAA",
    "profile": {"digest": "sha256:" + "0" * 64},
}

MATRIX = [
    ("nobody", "GET", "/v1/health", None, 200),
    # Metrics count every dataset's jobs: the operator's (admins) only.
    ("admin", "GET", "/metrics", None, 200),
    ("olga", "GET", "/metrics", None, 403),
    ("rita", "GET", "/metrics", None, 403),
    ("nobody", "GET", "/metrics", None, 401),
    ("wrong", "GET", "/metrics", None, 401),
    ("nobody", "GET", "/v1/me", None, 401),
    ("wrong", "GET", "/v1/me", None, 401),
    ("rita", "GET", "/v1/me", None, 200),
    # Reading a job: its researcher, the dataset's owner, admins; 404 for everyone else.
    ("rita", "GET", "/v1/jobs/{p}", None, 200),
    ("olga", "GET", "/v1/jobs/{p}", None, 200),
    ("admin", "GET", "/v1/jobs/{p}", None, 200),
    ("rob", "GET", "/v1/jobs/{p}", None, 404),
    ("oscar", "GET", "/v1/jobs/{p}", None, 404),
    ("nobody", "GET", "/v1/jobs/{p}", None, 401),
    ("wrong", "GET", "/v1/jobs/{p}", None, 401),
    ("rob", "GET", "/v1/jobs/000000000000", None, 404),
    # Review is the owner's; the code bundle is for whoever sees the job.
    ("olga", "GET", "/v1/jobs/{p}/review", None, 200),
    ("admin", "GET", "/v1/jobs/{p}/review", None, 200),
    ("rita", "GET", "/v1/jobs/{p}/review", None, 403),
    ("rob", "GET", "/v1/jobs/{p}/review", None, 404),
    ("rita", "GET", "/v1/jobs/{p}/bundle", None, 200),
    ("olga", "GET", "/v1/jobs/{p}/bundle", None, 200),
    ("rob", "GET", "/v1/jobs/{p}/bundle", None, 404),
    ("oscar", "GET", "/v1/jobs/{p}/bundle", None, 404),
    ("rita", "GET", "/v1/jobs/{p}/receipt", None, 200),
    ("rob", "GET", "/v1/jobs/{p}/receipt", None, 404),
    # Decisions: only the dataset's owner (or an admin), never the job's researcher.
    ("rita", "POST", "/v1/jobs/{p}/approve", {}, 403),
    ("rob", "POST", "/v1/jobs/{p}/approve", {}, 404),
    ("oscar", "POST", "/v1/jobs/{p}/approve", {}, 404),
    ("nobody", "POST", "/v1/jobs/{p}/approve", {}, 401),
    ("wrong", "POST", "/v1/jobs/{p}/approve", {}, 401),
    ("rita", "POST", "/v1/jobs/{p}/reject", {"reason": "no"}, 403),
    ("rob", "POST", "/v1/jobs/{p}/reject", {"reason": "no"}, 404),
    ("rita", "POST", "/v1/jobs/{p}/trust", None, 403),
    ("oscar", "POST", "/v1/jobs/{p}/trust", None, 404),
    ("rob", "POST", "/v1/jobs/{p}/cancel", {}, 404),
    ("oscar", "POST", "/v1/jobs/{p}/cancel", {}, 404),
    # Logs: the owner once the job ended (policy "owner": no live log leaves the data host);
    # the researcher only after release.
    ("olga", "GET", "/v1/jobs/{p}/logs", None, 409),
    ("rita", "GET", "/v1/jobs/{p}/logs", None, 403),
    ("olga", "GET", "/v1/jobs/{s}/logs", None, 200),
    ("rita", "GET", "/v1/jobs/{s}/logs", None, 403),
    ("rob", "GET", "/v1/jobs/{s}/logs", None, 404),
    # Nothing is downloadable before release, not even by the owner.
    ("rita", "GET", "/v1/jobs/{s}/artifacts", None, 409),
    ("olga", "GET", "/v1/jobs/{s}/artifacts", None, 409),
    ("rita", "GET", "/v1/jobs/{s}/artifacts/model.bin", None, 409),
    ("admin", "GET", "/v1/jobs/{s}/artifacts/model.bin", None, 409),
    ("rob", "GET", "/v1/jobs/{s}/artifacts/model.bin", None, 404),
    ("rita", "POST", "/v1/jobs/{s}/release", None, 403),
    ("oscar", "POST", "/v1/jobs/{s}/release", None, 404),
    ("rob", "POST", "/v1/jobs/{s}/release", None, 404),
    ("rita", "POST", "/v1/jobs/{s}/refuse", {"reason": "no"}, 403),
    ("oscar", "POST", "/v1/jobs/{s}/refuse", {"reason": "no"}, 404),
    ("rob", "POST", "/v1/jobs/{s}/refuse", {"reason": "no"}, 404),
    ("rita", "POST", "/v1/jobs/{s}/cancel", {}, 409),  # the owner releases or refuses it
    # What an output holds: the owner before release, nobody else until then.
    ("olga", "GET", "/v1/jobs/{s}/previews", None, 200),
    ("admin", "GET", "/v1/jobs/{s}/previews", None, 200),
    ("rita", "GET", "/v1/jobs/{s}/previews", None, 409),
    ("oscar", "GET", "/v1/jobs/{s}/previews", None, 404),
    ("nobody", "GET", "/v1/jobs/{s}/previews", None, 401),
    # The queue is everyone's own (empty for researchers).
    ("rita", "GET", "/v1/queue", None, 200),
    ("nobody", "GET", "/v1/queue", None, 401),
    # Users and datasets.
    ("olga", "POST", "/v1/users", {"name": "mallory", "role": "admin"}, 403),
    ("rita", "POST", "/v1/users", {"name": "mallory", "role": "admin"}, 403),
    ("nobody", "POST", "/v1/users", {"name": "mallory", "role": "admin"}, 401),
    ("rita", "POST", "/v1/datasets", {"name": "mine", **ATTESTED}, 403),
    ("rita", "GET", "/v1/datasets", None, 200),
    # The ledger is for every authenticated user.
    ("rob", "GET", "/v1/ledger/entries", None, 200),
    ("rob", "GET", "/v1/ledger/public-key", None, 200),
    ("nobody", "GET", "/v1/ledger/entries", None, 401),
    ("wrong", "GET", "/v1/ledger/checkpoint", None, 401),
    ("rob", "GET", "/v1/ledger/verify", None, 200),
    ("nobody", "GET", "/v1/ledger/verify", None, 401),
    # The web pages: a person without a session is sent to sign in; the JSON API's token is
    # not a session (the cookie is the pages' only credential).
    ("nobody", "GET", "/ui/queue", None, 303),
    ("olga", "GET", "/ui/queue", None, 303),
]


@pytest.mark.parametrize(
    ("who", "method", "path", "body", "status"),
    MATRIX,
    ids=[f"{w}-{m}-{p}-{s}" for w, m, p, _, s in MATRIX],
)
def test_role_matrix(world, who, method, path, body, status):
    response = world.call(who, method, path, json=body)
    assert response.status_code == status, response.text
    if status == 303:
        assert response.headers["location"].startswith("/ui/sign-in")
    if status >= 400:
        error = response.json()["error"]
        assert (
            error["kind"]
            in {
                401: {"unauthenticated"},
                403: {"not_allowed"},
                404: {"not_found"},
                409: {"conflict"},
            }[status]
        )
        assert error["message"]


def test_refusals_changed_nothing(world):
    types = world.install.entry_types(world.pending)
    assert types == ["job.submitted"]
    assert world.call("rita", "GET", "/v1/jobs/{p}").json()["state"] == "pending"
    assert world.call("olga", "GET", "/v1/jobs/{s}").json()["state"] == "succeeded"
    assert world.install.ctx.store.get_user("mallory") is None


def test_a_hidden_job_looks_exactly_like_a_missing_one(world):
    hidden = world.call("rob", "GET", "/v1/jobs/{p}").json()["error"]["message"]
    missing = world.call("rob", "GET", "/v1/jobs/ffffffffffff").json()["error"]["message"]
    assert hidden.replace(world.pending, "ID") == missing.replace("ffffffffffff", "ID")


def test_an_owner_cannot_approve_a_job_they_submitted_but_an_admin_can(world, tmp_path):
    job = world.install.submit_http(
        world.tokens["olga"], counting_job(tmp_path / "own", world.dataset)
    )["id"]
    refused = world.call("olga", "POST", f"/v1/jobs/{job}/approve", json={})
    assert refused.status_code == 403
    assert "own job" in refused.json()["error"]["message"]
    allowed = world.call("admin", "POST", f"/v1/jobs/{job}/approve", json={"note": "checked"})
    assert allowed.status_code == 200
    assert allowed.json()["approval"]["approver"] == "admin"


def test_each_role_lists_only_what_it_may_see(world):
    def ids(who: str) -> set[str]:
        response = world.call(who, "GET", "/v1/jobs")
        assert response.status_code == 200
        return {j["id"] for j in response.json()}

    both = {world.pending, world.succeeded}
    assert both <= ids("rita")
    assert both <= ids("olga")
    assert both <= ids("admin")
    assert ids("rob") & both == set()
    assert ids("oscar") & both == set()
    pending = world.call("olga", "GET", "/v1/jobs?state=pending").json()
    assert all(j["state"] == "pending" for j in pending)
    assert world.call("olga", "GET", "/v1/jobs?state=nonsense").status_code == 422


def test_after_release_the_researcher_downloads_verified_bytes_and_a_stranger_cannot(world):
    released = world.call("olga", "POST", "/v1/jobs/{s}/release")
    assert released.status_code == 200
    assert released.json()["state"] == "released"

    listing = world.call("rita", "GET", "/v1/jobs/{s}/artifacts")
    assert listing.status_code == 200
    listed = {a["name"]: a for a in listing.json()}
    assert set(listed) == {"metrics.json", "model.bin"}

    whole = world.call("rita", "GET", "/v1/jobs/{s}/artifacts/model.bin")
    assert whole.status_code == 200
    assert whole.content == world.model
    digest = hashlib.sha256(world.model).hexdigest()
    assert whole.headers["X-C2D-SHA256"] == digest
    assert listed["model.bin"]["sha256"] == f"sha256:{digest}"
    assert whole.headers["Accept-Ranges"] == "bytes"

    part = world.call(
        "rita", "GET", "/v1/jobs/{s}/artifacts/model.bin", headers={"Range": "bytes=100-199"}
    )
    assert part.status_code == 206
    assert part.content == world.model[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(world.model)}"

    assert world.call("rob", "GET", "/v1/jobs/{s}/artifacts").status_code == 404
    assert world.call("rob", "GET", "/v1/jobs/{s}/artifacts/model.bin").status_code == 404
    assert world.call("oscar", "GET", "/v1/jobs/{s}/artifacts/model.bin").status_code == 404
    assert world.call("nobody", "GET", "/v1/jobs/{s}/artifacts/model.bin").status_code == 401
    # Names are looked up among the recorded outputs, never joined to a path.
    for name in ("..%2F..%2Fledger.key", "%2Fetc%2Fpasswd", "model.bin%00"):
        missing = world.call("rita", "GET", "/v1/jobs/{s}/artifacts/" + name)
        assert missing.status_code == 404, name
        assert "has no artifact" in missing.json()["error"]["message"]

    logs = world.call("rita", "GET", "/v1/jobs/{s}/logs")
    assert logs.status_code == 200
    assert logs.text == "epoch 1 done\n"
    assert logs.headers["X-C2D-Log-Truncated"] == "0"


def test_the_researcher_may_cancel_her_pending_job(world, tmp_path):
    job = world.install.submit_http(
        world.tokens["rita"], counting_job(tmp_path / "j", world.dataset)
    )["id"]
    cancelled = world.call("rita", "POST", f"/v1/jobs/{job}/cancel", json={"reason": "typo"})
    assert cancelled.status_code == 200
    assert cancelled.json()["state"] == "cancelled"
    again = world.call("rita", "POST", f"/v1/jobs/{job}/cancel", json={})
    assert again.status_code == 409
