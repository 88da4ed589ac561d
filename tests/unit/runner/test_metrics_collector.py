"""``/metrics``'s collector against a real store: every number is the store's, at scrape time.

A world on a fixed clock holds one job in each of several states, a dry run and outputs; the
collector's exposition is parsed with Prometheus's own parser and each sample compared with
what the test did. A second collector opened afterwards (a restarted API) says the same.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from jobs.models import OutputFile
from jobs.schema_records import DryRun
from jobs.states import JobState
from runner.control.metrics import Metrics, StoreCollector
from tests.kit.worlds import World, build_control_world, build_world, ok_outcome

DIGEST = "sha256:" + "ab" * 32
STALE_S = 60.0


def scrape(world: World) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample a fresh collector over the world's database exposes: (name, labels) ->
    value, as Prometheus would read it."""
    collector = StoreCollector(world.tmp / "c2d.db", STALE_S, clock=world.clock)
    registry = CollectorRegistry()
    registry.register(collector)
    try:
        text = generate_latest(registry).decode()
    finally:
        collector.close()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def labels(**values: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(values.items()))


def finished(world: World, *, seconds: float, size: int, succeeded: bool = True) -> str:
    """An approved job claimed 2 s after approval that ran ``seconds`` and made ``size``
    bytes of output; its id."""
    job = world.approved()
    world.clock.advance(2)
    claim = world.service.claim(job.id, "default@machine:1", 600)
    world.clock.advance(seconds)
    outputs = [OutputFile(name="model.skops", sha256=DIGEST, bytes=size)] if succeeded else []
    outcome = ok_outcome(outputs=outputs)
    if not succeeded:
        outcome = ok_outcome(succeeded=False, exit_code=1, reason="exited with code 1")
    world.service.finish(job.id, claim.fence, outcome)
    return job.id


@pytest.fixture
def world(tmp_path: Path):
    # Outputs wait for the owner's release, said explicitly (the default may change).
    w = build_world(tmp_path, review_outputs=True)
    yield w
    w.store.close()
    w.ledger.close()


def test_jobs_by_state_queue_ages_and_durations_are_the_stores(world: World) -> None:
    start = world.clock.now
    pending = world.submit()
    world.clock.advance(10)
    waiting = world.approved()  # approved at start + 10, never claimed
    held = finished(world, seconds=20, size=1000)
    released = finished(world, seconds=40, size=500)
    world.service.release(world.olga, released)
    failed = finished(world, seconds=3, size=0, succeeded=False)
    running = world.approved()
    world.clock.advance(2)
    world.service.claim(running.id, "default@machine:2", 30)
    world.clock.advance(5)
    world.service.record_dryrun(
        DryRun(
            job_id=pending.id,
            ok=False,
            reason="timed out",
            timed_out=True,
            worker="w",
            time=world.clock.now,
        )
    )

    samples = scrape(world)

    def jobs(state: JobState) -> float:
        return samples[("c2d_jobs", labels(dataset="iris", host="default", state=state.value))]

    assert {s: jobs(s) for s in JobState} == {
        JobState.PENDING: 1,
        JobState.APPROVED: 1,
        JobState.RUNNING: 1,
        JobState.SUCCEEDED: 1,
        JobState.RELEASED: 1,
        JobState.FAILED: 1,
        JobState.REJECTED: 0,
        JobState.CANCELLED: 0,
    }
    stored = {s: len(world.store.list_jobs(state=s)) for s in JobState}
    assert {s: jobs(s) for s in JobState} == stored
    now = world.clock.now
    assert samples[("c2d_oldest_job_age_seconds", labels(state="pending"))] == now - start
    assert samples[("c2d_oldest_job_age_seconds", labels(state="approved"))] == pytest.approx(
        now - world.service.load_job(waiting.id).approval.time  # type: ignore[union-attr]
    )
    host = labels(host="default")
    # Four claims, each 2 s after approval; three runs ended after 20, 40 and 3 s.
    assert samples[("c2d_job_dispatch_seconds_count", host)] == 4
    assert samples[("c2d_job_dispatch_seconds_sum", host)] == 8
    assert samples[("c2d_job_dispatch_seconds_bucket", labels(host="default", le="1.0"))] == 0
    assert samples[("c2d_job_dispatch_seconds_bucket", labels(host="default", le="2.5"))] == 4
    assert samples[("c2d_job_run_seconds_count", host)] == 3
    assert samples[("c2d_job_run_seconds_sum", host)] == 63
    assert samples[("c2d_job_run_seconds_bucket", labels(host="default", le="30.0"))] == 2
    iris = {"dataset": "iris", "host": "default"}
    assert samples[("c2d_output_bytes_total", labels(**iris))] == 1500
    assert samples[("c2d_output_bytes_held", labels(**iris))] == 1000
    assert samples[("c2d_dryruns", labels(**iris, outcome="timed_out"))] == 1
    assert samples[("c2d_dryruns", labels(**iris, outcome="ok"))] == 0
    lease = labels(job=running.id, host="default", worker="default@machine:2")
    assert samples[("c2d_job_lease_remaining_seconds", lease)] == 25
    assert samples[("c2d_job_running_seconds", lease)] == 5
    assert samples[("c2d_ledger_entries", ())] == world.ledger.size()
    assert {held, released, failed} <= {j.id for j in world.store.list_jobs()}


def test_a_restarted_collector_reports_the_same_and_an_empty_store_reports_zeros(
    world: World,
) -> None:
    assert scrape(world)[("c2d_oldest_job_age_seconds", labels(state="pending"))] == 0
    world.submit()
    first = scrape(world)
    assert first == scrape(world)
    assert first[("c2d_jobs", labels(dataset="iris", host="default", state="pending"))] == 1


def test_hosts_are_ready_only_after_a_fresh_hello_with_the_engine_answering(
    world: World,
) -> None:
    host = world.service.get_host("default")
    ready = ("c2d_host_ready", labels(host="default"))
    assert scrape(world)[ready] == 0  # never said hello
    world.service.host_seen(host, {}, "agent", True)
    assert scrape(world)[ready] == 1
    world.service.host_seen(host, {}, "agent", False)
    assert scrape(world)[ready] == 0
    world.service.host_seen(host, {}, "agent", True)
    world.clock.advance(STALE_S + 1)
    samples = scrape(world)
    assert samples[ready] == 0
    assert samples[("c2d_host_last_hello_age_seconds", labels(host="default"))] == STALE_S + 1


def test_a_workers_name_with_quotes_and_braces_stays_one_label(world: World) -> None:
    """A data host names its workers (printable, at most 200 characters: the claim checks);
    quotes, backslashes and braces in one must not break or forge the exposition."""
    worker = 'default@m"} c2d_jobs{state="x\\'
    job = world.approved()
    world.service.claim(job.id, worker, 30)
    samples = scrape(world)
    lease = labels(job=job.id, host="default", worker=worker)
    assert samples[("c2d_job_lease_remaining_seconds", lease)] == 30
    assert not any(dict(key[1]).get("state") == "x" for key in samples)


def test_ledger_appends_are_timed_from_the_apis_start(tmp_path: Path) -> None:
    control = build_control_world(tmp_path)
    metrics = Metrics(control.control)
    try:

        def appends() -> float:
            text = metrics.render().decode()
            families = {f.name: f for f in text_string_to_metric_families(text)}
            counts = [
                s.value
                for s in families["c2d_ledger_append_seconds"].samples
                if s.name.endswith("_count")
            ]
            return counts[0]

        assert appends() == 0  # a new process has timed nothing yet
        before = control.control.ledger.size()
        job = control.submit()
        control.service.approve(control.users["olga"], job.id, "ok")
        assert control.control.ledger.size() == before + 2
        assert appends() == 2
    finally:
        metrics.close()
        control.close()
