"""Data hosts against the control plane over real HTTP: what one host's credential can reach.

A second host enrolled with `c2d host enroll` (its own key, its own state folder) cannot see,
claim, renew, finish, download or upload anything of the first host's jobs; a host credential
opens no person's route and a person's token no host route; a finish signed by any key but the
host's enrolled one is refused and leaves the ledger as it was; an upload must hash to what the
host signed, and an output leaves only once released.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobs.attestations import outcome_statement
from jobs.errors import InvalidRequest, NotAllowed, NotFound
from jobs.models import Job, Outcome, OutputFile
from jobs.states import JobState
from runner.artifacts import ArtifactStore
from runner.host.identity import HostIdentity, load_identity
from runner.host.port_http import HttpPort
from tests.kit.installation import Installation, installed
from tests.kit.procs import redis_db_url
from tests.kit.redis import flush_redis

pytestmark = [pytest.mark.docker, pytest.mark.redis]

REDIS_DB = 4
MODEL = b"the model's bytes, as the job wrote them"


@pytest.fixture(scope="module")
def install(tmp_path_factory, redis_url, job_image) -> Iterator[Installation]:
    url = redis_db_url(redis_url, REDIS_DB)
    flush_redis(url)
    with installed(tmp_path_factory.mktemp("hosts"), url) as made:
        made.start_server()
        made.hello()
        yield made
    flush_redis(url)


def identity_of(install: Installation, home: Path) -> HostIdentity:
    return load_identity(install.settings.model_copy(update={"home": home}))


@pytest.fixture(scope="module")
def other(install, tmp_path_factory) -> HostIdentity:
    """Host ``other``, enrolled over HTTP into its own folder as its operator would."""
    home = tmp_path_factory.mktemp("other-host")
    enrolled = install.add_host("other", home)
    assert enrolled["name"] == "other"
    return identity_of(install, home)


@pytest.fixture(scope="module")
def local(install) -> HostIdentity:
    return identity_of(install, install.host_home)


def port_of(install: Installation, me: HostIdentity) -> Iterator[HttpPort]:
    port = HttpPort(install.url, me.credential, me.name)
    try:
        yield port
    finally:
        port.close()


@pytest.fixture
def local_port(install, local) -> Iterator[HttpPort]:
    yield from port_of(install, local)


@pytest.fixture
def other_port(install, other) -> Iterator[HttpPort]:
    yield from port_of(install, other)


@pytest.fixture
def job(install, tmp_path, job_image) -> Job:
    """An approved job on host ``local``, on a dataset whose owner releases outputs by hand."""
    return install.approved_job(tmp_path, job_image, review_outputs=True)[0]


def outcome_with_model() -> Outcome:
    return Outcome(
        succeeded=True,
        exit_code=0,
        reason="succeeded",
        duration_s=1.0,
        outputs=[
            OutputFile(
                name="model.skops",
                sha256="sha256:" + hashlib.sha256(MODEL).hexdigest(),
                bytes=len(MODEL),
            )
        ],
        metrics={"rows": 20.0},
    )


def as_host(install: Installation, me: HostIdentity, method: str, path: str, **kw: Any) -> int:
    response = httpx.request(
        method,
        f"{install.url}/v1/host{path}",
        headers={"Authorization": f"Bearer {me.credential}"},
        timeout=30,
        **kw,
    )
    return response.status_code


def test_another_hosts_credential_reaches_nothing_of_a_hosts_job(
    install, job, other_port, other, tmp_path
):
    store = ArtifactStore(tmp_path / "other-artifacts")
    outcome = outcome_with_model()
    ledger = install.ledger_size()
    attempts: dict[str, Callable[[], object]] = {
        "read the job": lambda: other_port.job(job.id),
        "read its image": lambda: other_port.job_image(job.id),
        "read its dataset": lambda: other_port.dataset(job.dataset),
        "download its code": lambda: other_port.fetch_bundle(job, job.code_digest, store),
        "claim it": lambda: other_port.claim(job.id, "other@evil:1", 30),
        "renew its lease": lambda: other_port.heartbeat(job.id, "other@evil:1", 1, 30),
        "finish it": lambda: other_port.finish(
            job.id, 1, outcome, other.sign(outcome_statement("other", job.id, 1, outcome))
        ),
        "lease its dry run": lambda: other_port.lease_dryrun(job.id, "other@evil:1", 30),
    }
    for what, attempt in attempts.items():
        with pytest.raises(NotFound):
            attempt()
        assert install.load_job(job.id).state is JobState.APPROVED, what
    digest = outcome.outputs[0].sha256
    assert as_host(install, other, "PUT", f"/jobs/{job.id}/outputs/{digest}", content=MODEL) == 404
    assert not store.has(job.code_digest)
    assert "job.started" not in install.entry_types(job.id)
    assert install.ledger_size() == ledger


def test_a_host_claims_its_own_job_only_under_its_own_name(install, job, local_port):
    with pytest.raises(InvalidRequest):
        local_port.claim(job.id, "other@vm:1", 30)  # a worker name of another host
    claim = local_port.claim(job.id, "local@vm:1", 30)
    assert claim.job.state is JobState.RUNNING


def test_credentials_do_not_cross_between_people_and_hosts(install, local, job):
    researcher_token = install.user("researcher", "rudy")[1]
    person = {"Authorization": f"Bearer {researcher_token}"}
    host = {"Authorization": f"Bearer {local.credential}"}
    forged = {"Authorization": "Bearer c2dh_" + "A" * 43}
    ledger = install.ledger_size()
    checks = [
        ("a person on a host route", "POST", "/v1/host/hello", person, {"environments": {}}),
        ("a person reading a host's job", "GET", f"/v1/host/jobs/{job.id}", person, None),
        ("no token on a host route", "GET", f"/v1/host/jobs/{job.id}", {}, None),
        ("a made-up host credential", "GET", f"/v1/host/jobs/{job.id}", forged, None),
        ("a host on a person's route", "GET", "/v1/jobs", host, None),
        ("a host approving", "POST", f"/v1/jobs/{job.id}/approve", host, {}),
        ("a host releasing", "POST", f"/v1/jobs/{job.id}/release", host, {}),
        ("a host cancelling", "POST", f"/v1/jobs/{job.id}/cancel", host, {"reason": "x"}),
        ("a host adding a host", "POST", "/v1/hosts", host, {"name": "sneaky"}),
    ]
    for what, method, path, headers, body in checks:
        response = httpx.request(
            method, f"{install.url}{path}", headers=headers, json=body, timeout=30
        )
        assert response.status_code == 401, (what, response.text)
    assert install.load_job(job.id).state is JobState.APPROVED
    assert install.ledger_size() == ledger


def test_a_finish_signed_by_another_key_is_refused_and_the_ledger_is_unchanged(
    install, job, local_port, local, other
):
    claim = local_port.claim(job.id, "local@vm:1", 30)
    outcome = outcome_with_model()
    statement = outcome_statement("local", job.id, claim.fence, outcome)
    entries = install.entry_types(job.id)

    for forger in (other.sign(statement), "A" * 86 + "==", ""):
        with pytest.raises(NotAllowed):
            local_port.finish(job.id, claim.fence, outcome, forger)
        assert install.entry_types(job.id) == entries
        assert install.load_job(job.id).state is JobState.RUNNING
    # The outcome changed after signing (a metric raised): the signature no longer holds.
    inflated = outcome.model_copy(update={"metrics": {"rows": 1e9}})
    with pytest.raises(NotAllowed):
        local_port.finish(job.id, claim.fence, inflated, local.sign(statement))
    assert install.entry_types(job.id) == entries
    assert "bad signature" in install.logs()

    local_port.finish(job.id, claim.fence, outcome, local.sign(statement))
    done = install.load_job(job.id)
    assert done.outcome == outcome
    assert install.entry_types(job.id).count("job.finished") == 1


def test_an_upload_must_be_the_output_the_host_signed_and_leaves_on_release(
    install, job, local_port, local, tmp_path
):
    claim = local_port.claim(job.id, "local@vm:1", 30)
    outcome = outcome_with_model()
    digest = outcome.outputs[0].sha256
    local_port.finish(
        job.id,
        claim.fence,
        outcome,
        local.sign(outcome_statement("local", job.id, claim.fence, outcome)),
    )
    model = tmp_path / "model.skops"
    model.write_bytes(MODEL)
    upload = f"/jobs/{job.id}/outputs/{digest}"

    # Not released yet: nothing of it leaves the host.
    assert install.load_job(job.id).state is JobState.SUCCEEDED
    with pytest.raises(NotAllowed):
        local_port.upload(job.id, "output", digest, model)
    owner = install.ctx.store.get_user(install.ctx.service.dataset_of(job).policy.owner)
    assert owner is not None
    install.ctx.service.release(owner, job.id)

    other_bytes = b"x" * len(MODEL)
    assert as_host(install, local, "PUT", upload, content=other_bytes) == 409
    unnamed = "sha256:" + hashlib.sha256(other_bytes).hexdigest()
    assert as_host(install, local, "PUT", f"/jobs/{job.id}/outputs/{unnamed}", content=b"x") == 403
    assert as_host(install, local, "PUT", upload, content=MODEL + b"!") == 413
    assert not install.ctx.artifacts.has(digest)
    assert not install.ctx.artifacts.has(unnamed)

    local_port.upload(job.id, "output", digest, model)
    assert install.ctx.artifacts.path(digest).read_bytes() == MODEL
