"""``/metrics`` and ``/v1/ready`` of a live installation, read over real HTTP.

One installation for the module on a Redis of its own (``RedisServer``: the last test stops
and restarts it): `c2d server` and `c2d host start` as processes, real containers. A few jobs
run (with their dry runs), then the scrape is parsed with Prometheus's own parser and compared
with the store; only an admin's token reads it; readiness names Redis while it is down.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.kit.data import counting_job, make_dataset
from tests.kit.installation import Installation, module_installation
from tests.kit.procs import wait_for
from tests.kit.redis import RedisServer

pytestmark = [pytest.mark.docker, pytest.mark.redis, pytest.mark.slow]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("metrics-redis"), persistent=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, redis_server, docker_client, job_image) -> Iterator[Installation]:
    root = tmp_path_factory.mktemp("metrics")
    # A long re-dispatch grace: every job here is sent once, by its approval.
    # A data host silent for 10 s counts as gone (its agent says hello every second here).
    with module_installation(
        root, redis_server.url, docker_client, redispatch_s=120.0, host_stale_s=10.0
    ) as made:
        made.start_server()
        made.start_worker()
        yield made


def get(stack: Installation, path: str, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.get(f"{stack.url}{path}", headers=headers, timeout=30)


def post(stack: Installation, path: str, token: str, body: dict[str, Any]) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    response = httpx.post(f"{stack.url}{path}", headers=headers, json=body, timeout=30)
    assert response.status_code == 200, response.text


def scrape(stack: Installation) -> Samples:
    response = get(stack, "/metrics", stack.admin_token)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def of(samples: Samples, name: str, **match: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of ``name`` whose labels include ``match``."""
    return {
        key: value
        for (found, key), value in samples.items()
        if found == name and all(dict(key).get(k) == v for k, v in match.items())
    }


def dryrun_recorded(stack: Installation, job_id: str) -> bool:
    return bool(stack.query("SELECT 1 FROM job_dryruns WHERE job_id = ?", job_id))


@pytest.fixture(scope="module")
def ran(stack: Installation, tmp_path_factory) -> str:
    """Three jobs on one dataset whose owner releases outputs by hand: one left pending, one
    succeeded and held, one released; each dry-run first. The dataset's name."""
    tmp: Path = tmp_path_factory.mktemp("metrics-jobs")
    owner, owner_token = stack.user("owner", "olga")
    _, researcher_token = stack.user("researcher", "rita")
    dataset = stack.dataset(owner, make_dataset(tmp / "data", rows=30), review_outputs=True)
    ids = [
        stack.submit_http(researcher_token, counting_job(tmp / f"job{n}", dataset))["id"]
        for n in range(3)
    ]
    for job_id in ids:
        wait_for(f"job {job_id}'s dry run", lambda j=job_id: dryrun_recorded(stack, j), 120)
    for job_id in ids[1:]:
        post(stack, f"/v1/jobs/{job_id}/approve", owner_token, {"note": "fine"})
    for job_id in ids[1:]:
        assert stack.wait_final(job_id).state.value == "succeeded", stack.logs()
    post(stack, f"/v1/jobs/{ids[2]}/release", owner_token, {})
    return dataset


def test_the_scrape_counts_what_the_store_holds(stack: Installation, ran: str) -> None:
    before = stack.ledger_size()
    samples = scrape(stack)
    after = stack.ledger_size()

    stored = {
        state: count
        for state, count in stack.query(
            "SELECT state, COUNT(*) FROM jobs WHERE dataset = ? GROUP BY state", ran
        )
    }
    jobs = of(samples, "c2d_jobs", dataset=ran, host="local")
    assert {dict(k)["state"]: v for k, v in jobs.items() if v} == stored
    assert stored == {"pending": 1, "succeeded": 1, "released": 1}
    total = stack.query("SELECT COUNT(*) FROM jobs")[0][0]
    assert sum(of(samples, "c2d_jobs").values()) == total

    records = [
        json.loads(r[0])
        for r in stack.query(
            "SELECT r.record FROM job_dryruns r JOIN jobs j ON j.id = r.job_id WHERE j.dataset = ?",
            ran,
        )
    ]
    assert sum(of(samples, "c2d_dryruns", dataset=ran).values()) == len(records) == 3
    ok = of(samples, "c2d_dryruns", dataset=ran, outcome="ok")
    assert sum(ok.values()) == sum(1 for r in records if r["ok"])

    outputs = [
        (state, sum(o["bytes"] for o in json.loads(outcome)["outputs"]))
        for state, outcome in stack.query(
            "SELECT state, outcome FROM jobs WHERE dataset = ? AND outcome IS NOT NULL", ran
        )
    ]
    assert sum(of(samples, "c2d_output_bytes_total", dataset=ran).values()) == sum(
        size for _, size in outputs
    )
    assert sum(of(samples, "c2d_output_bytes_held", dataset=ran).values()) == sum(
        size for state, size in outputs if state == "succeeded"
    )

    ended = stack.query(
        "SELECT COUNT(*) FROM jobs j JOIN datasets d ON d.name = j.dataset"
        " WHERE d.host = 'local' AND j.started IS NOT NULL AND j.finished IS NOT NULL"
    )[0][0]
    assert samples[("c2d_job_run_seconds_count", (("host", "local"),))] == ended
    claimed = stack.query("SELECT COUNT(*) FROM jobs WHERE started IS NOT NULL")[0][0]
    assert samples[("c2d_job_dispatch_seconds_count", (("host", "local"),))] == claimed
    assert before <= samples[("c2d_ledger_entries", ())] <= after
    assert samples[("c2d_ledger_append_seconds_count", ())] > 0
    assert samples[("c2d_host_ready", (("host", "local"),))] == 1
    assert samples[("c2d_oldest_job_age_seconds", (("state", "pending"),))] > 0


def test_only_an_admin_reads_the_metrics(stack: Installation) -> None:
    assert get(stack, "/metrics").status_code == 401
    assert get(stack, "/metrics", "c2d_not-a-token").status_code == 401
    for role in ("owner", "researcher"):
        _, token = stack.add_user(role)
        response = get(stack, "/metrics", token)
        assert response.status_code == 403
        assert "only admins" in response.json()["error"]["message"]
        assert "c2d_jobs" not in response.text


def test_ready_names_a_data_host_whose_agent_stops_or_whose_engine_does_not_answer(
    stack: Installation,
) -> None:
    wait_for("the installation to be ready", _ready_body(stack, 200), 60)
    for worker in stack.live("worker"):
        worker.stop()
    body = wait_for("readiness to notice the host is silent", _ready_body(stack, 503), 60)
    assert body["checks"]["host:local"]["ok"] is False
    assert "c2d host start" in body["checks"]["host:local"]["detail"]
    assert body["checks"]["redis"]["ok"] is True
    assert get(stack, "/v1/ready?hosts=false").status_code == 200
    # Anyone else learns that a data host is not ready, not which one or why.
    _, researcher = stack.add_user("researcher")
    for token in (None, researcher):
        seen = get(stack, "/v1/ready", token)
        assert seen.status_code == 503
        assert seen.json()["checks"] == {
            "database": {"ok": True, "detail": "ok"},
            "ledger_key": {"ok": True, "detail": "ok"},
            "redis": {"ok": True, "detail": "ok"},
            "hosts": {
                "ok": False,
                "detail": "0 of 1 data hosts ready (an admin's token shows which)",
            },
        }
        assert "local" not in seen.text

    # An agent whose engine is not there still says hello, and says so.
    stack.start_worker(DOCKER_HOST="unix:///nonexistent/docker.sock")
    body = wait_for(
        "the host's hello without its engine",
        lambda: _engine_down(get(stack, "/v1/ready", stack.admin_token).json()),
        60,
        stack.logs(),
    )
    assert "start the engine there" in body["checks"]["host:local"]["detail"]
    for worker in stack.live("worker"):
        worker.stop()
    stack.start_worker()
    wait_for("the host to be ready again", _ready_body(stack, 200), 60, stack.logs())


def _engine_down(body: dict[str, Any]) -> dict[str, Any] | None:
    detail = body["checks"].get("host:local", {}).get("detail", "")
    return body if "engine did not answer" in detail else None


def test_ready_names_redis_while_it_is_down_and_is_ready_once_it_is_back(
    stack: Installation, redis_server: RedisServer
) -> None:
    body = wait_for("the installation to be ready", _ready_body(stack, 200), 60)
    assert body["ready"] is True
    assert set(body["checks"]) == {"database", "ledger_key", "redis", "host:local"}
    redis_server.stop()
    try:
        body = wait_for("readiness to notice Redis is gone", _ready_body(stack, 503), 30)
        assert body["ready"] is False
        assert body["checks"]["redis"]["ok"] is False
        assert "C2D_REDIS_URL" in body["checks"]["redis"]["detail"]
        assert body["checks"]["database"]["ok"] is True
        anonymous = get(stack, "/v1/ready").json()["checks"]
        assert anonymous["redis"] == {"ok": False, "detail": "failing (an admin's token shows why)"}
        assert "hosts" in anonymous
        assert "host:local" not in anonymous
        assert get(stack, "/v1/health").status_code == 200  # alive, only not ready
    finally:
        redis_server.start()
    body = wait_for("readiness to see Redis back", _ready_body(stack, 200), 60)
    assert body["checks"]["redis"] == {"ok": True, "detail": "answers"}


def _ready_body(stack: Installation, status: int) -> Any:
    """A ``wait_for`` probe: the body of ``GET /v1/ready`` (as an admin reads it, every
    check named and explained) once it answers ``status``."""

    def check() -> dict[str, Any] | None:
        response = get(stack, "/v1/ready", stack.admin_token)
        return dict(response.json()) if response.status_code == status else None

    return check
