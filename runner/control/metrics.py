"""``/metrics``: what an operator watches, in Prometheus's text format (``prometheus-client``).

Almost everything is read from the store at scrape time (``StoreCollector`` over
``jobs.stats.read_stats``), not counted as things happen: a restarted API reports the truth at
once, and two API processes over one database report the same. Only the ledger's append latency
is measured as it happens, in this process (the ledger's ``on_append``); it starts from zero
when the API does, as Prometheus expects of a histogram.

Every family is prefixed ``c2d_``. Label values are dataset, data host and state names (all
checked names), job ids (made by c2d) and, for leases, the worker a data host named (escaped
and cut to 200 characters: a host's words reach an operator's terminal through ``curl``).
Nothing a job's code controls is a label. The registry is this app's own, never the global one,
so two APIs in one process (tests) do not share metrics.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from jobs.safe_text import escape
from jobs.states import JobState
from jobs.stats import StoreStats, read_stats
from runner.context import Context
from runner.control.readiness import host_problem

DISPATCH_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
"""Seconds from approval to a data host's claim: about a second when all is well, the
reconciler's re-send (``redispatch_s``) when a message was lost, far more when a host is gone."""
RUN_BUCKETS = (1, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200, 21600)
"""Seconds from claim to end: jobs run from seconds to the longest timeout (6 h by default)."""
APPEND_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
MAX_LABEL = 200


def _histogram(
    name: str, doc: str, values: Sequence[tuple[str, float]], buckets: Sequence[float]
) -> HistogramMetricFamily:
    """A histogram family labelled by ``host`` from (host, value) pairs: cumulative counts."""
    family = HistogramMetricFamily(name, doc, labels=["host"])
    by_host: dict[str, list[float]] = {}
    for host, value in values:
        by_host.setdefault(host, []).append(value)
    for host, seen in sorted(by_host.items()):
        counts = [(str(float(le)), sum(1 for v in seen if v <= le)) for le in buckets]
        counts.append(("+Inf", len(seen)))
        family.add_metric([host], counts, sum_value=sum(seen))
    return family


class StoreCollector(Collector):
    """The store's numbers at scrape time (see the module docstring).

    It reads through a read-only connection of its own, so a scrape never waits on the API's
    write lock; ``clock`` gives "now" for ages (the tests' clock in unit tests).
    """

    def __init__(
        self,
        db_path: Path,
        stale_s: float,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db_path = db_path
        self.stale_s = stale_s
        self.clock = clock
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _stats(self) -> StoreStats:
        with self._lock:
            if self._conn is None:
                self._conn = sqlite3.connect(
                    f"file:{self.db_path}?mode=ro",
                    uri=True,
                    timeout=30,
                    isolation_level=None,
                    check_same_thread=False,
                )
            return read_stats(self._conn)

    def collect(self) -> Iterable[Metric]:
        stats = self._stats()
        now = self.clock()
        yield from self._jobs(stats, now)
        yield _histogram(
            "c2d_job_dispatch_seconds",
            "Seconds from a job's approval to its data host's claim, of every claimed job.",
            stats.dispatch_s,
            DISPATCH_BUCKETS,
        )
        yield _histogram(
            "c2d_job_run_seconds",
            "Seconds from a job's claim to its end, of every job that started and ended.",
            stats.run_s,
            RUN_BUCKETS,
        )
        yield from self._results(stats)
        yield from self._leases(stats, now)
        yield from self._hosts(stats, now)
        yield from self._storage(stats)

    def _jobs(self, stats: StoreStats, now: float) -> Iterable[Metric]:
        jobs = GaugeMetricFamily(
            "c2d_jobs",
            "Jobs in each state, by dataset and data host.",
            labels=["dataset", "host", "state"],
        )
        for (dataset, host, state), count in sorted(stats.jobs.items()):
            jobs.add_metric([dataset, host, state], count)
        yield jobs
        oldest = GaugeMetricFamily(
            "c2d_oldest_job_age_seconds",
            "Age of the oldest pending job (since submission) and of the oldest approved job "
            "no data host has claimed yet (since approval); 0 when there is none.",
            labels=["state"],
        )
        for state in (JobState.PENDING, JobState.APPROVED):
            since = stats.oldest.get(state)
            oldest.add_metric([state.value], 0.0 if since is None else max(0.0, now - since))
        yield oldest

    def _results(self, stats: StoreStats) -> Iterable[Metric]:
        dryruns = GaugeMetricFamily(
            "c2d_dryruns",
            "Jobs whose dry run on mock data ended so (ok, failed, timed_out, oom).",
            labels=["dataset", "host", "outcome"],
        )
        for (dataset, host, outcome), count in sorted(stats.dryruns.items()):
            dryruns.add_metric([dataset, host, outcome], count)
        yield dryruns
        total: dict[tuple[str, str], int] = {}
        held: dict[tuple[str, str], int] = {}
        for (dataset, host, state), size in stats.output_bytes.items():
            total[(dataset, host)] = total.get((dataset, host), 0) + size
            if state == JobState.SUCCEEDED.value:
                held[(dataset, host)] = held.get((dataset, host), 0) + size
        written = CounterMetricFamily(
            "c2d_output_bytes",
            "Bytes of the outputs runs made (released, held or refused), by dataset and host.",
            labels=["dataset", "host"],
        )
        waiting = GaugeMetricFamily(
            "c2d_output_bytes_held",
            "Bytes of outputs waiting on their data host for their owner's release.",
            labels=["dataset", "host"],
        )
        for key, size in sorted(total.items()):
            written.add_metric(list(key), size)
            waiting.add_metric(list(key), held.get(key, 0))
        yield written
        yield waiting

    def _leases(self, stats: StoreStats, now: float) -> Iterable[Metric]:
        labels = ["job", "host", "worker"]
        remaining = GaugeMetricFamily(
            "c2d_job_lease_remaining_seconds",
            "Seconds left on each running job's lease (negative: expired, its worker silent).",
            labels=labels,
        )
        age = GaugeMetricFamily(
            "c2d_job_running_seconds",
            "Seconds since each running job's data host claimed it.",
            labels=labels,
        )
        for lease in stats.leases:
            values = [lease.job_id, lease.host, escape(lease.worker)[:MAX_LABEL]]
            if lease.expires is not None:
                remaining.add_metric(values, lease.expires - now)
            if lease.started is not None:
                age.add_metric(values, max(0.0, now - lease.started))
        yield remaining
        yield age

    def _hosts(self, stats: StoreStats, now: float) -> Iterable[Metric]:
        ready = GaugeMetricFamily(
            "c2d_host_ready",
            "1 if an enrolled data host said hello lately and its engine answered, else 0.",
            labels=["host"],
        )
        last = GaugeMetricFamily(
            "c2d_host_last_hello_age_seconds",
            "Seconds since each enrolled data host last said hello.",
            labels=["host"],
        )
        for beat in stats.hosts:
            if not beat.enrolled:
                continue
            ready.add_metric([beat.host], 0 if host_problem(beat, now, self.stale_s) else 1)
            if beat.last_seen is not None:
                last.add_metric([beat.host], max(0.0, now - beat.last_seen))
        yield ready
        yield last

    def _storage(self, stats: StoreStats) -> Iterable[Metric]:
        yield GaugeMetricFamily(
            "c2d_ledger_entries", "Entries in the ledger.", value=stats.ledger_entries
        )
        size = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(FileNotFoundError):
                size += os.stat(f"{self.db_path}{suffix}").st_size
        yield GaugeMetricFamily(
            "c2d_database_bytes",
            "Bytes of the state database (store and ledger) and its write-ahead log.",
            value=size,
        )

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class Metrics:
    """One API's metrics: its own registry, the store's collector, the ledger's appends."""

    def __init__(self, ctx: Context, *, clock: Callable[[], float] = time.time) -> None:
        self.registry = CollectorRegistry()
        self.store = StoreCollector(ctx.settings.db_path, ctx.settings.host_stale_s, clock=clock)
        self.registry.register(self.store)
        self.append_seconds = Histogram(
            "c2d_ledger_append_seconds",
            "Seconds each ledger append took in this API process (hashing, tree, rows; not "
            "the commit), since it started.",
            buckets=APPEND_BUCKETS,
            registry=self.registry,
        )
        ctx.ledger.on_append = self._appended

    def _appended(self, entries: int, seconds: float) -> None:
        del entries  # one append of several entries is one observation: one commit's work
        self.append_seconds.observe(seconds)

    def render(self) -> bytes:
        """The exposition in Prometheus's text format."""
        return generate_latest(self.registry)

    def close(self) -> None:
        self.store.close()
