"""Celery over Redis as transport only: the app's settings, the queues and the task names.

The API and a data host's reconciler send (``Dispatcher``), a data host's worker consumes
(``runner.host.tasks``); all build their Celery app here, so they agree on every setting.

Two tasks, both on the data host's queue: ``c2d.run_job`` runs an approved job, and
``c2d.dryrun_job`` runs a pending one against mock data before review (``runner.host.dryrun``).

The store is the source of truth; a message only says "look at job X". So the settings make a
lost or duplicated message harmless rather than impossible:

- ``task_acks_late`` + ``task_reject_on_worker_lost``: a message is acknowledged after the task
  returns, so a worker that dies mid-job leaves it to be delivered again;
- ``worker_prefetch_multiplier = 1``: a worker reserves no more jobs than it runs;
- the Redis ``visibility_timeout`` is longer than the longest job a host allows (plus an hour),
  so Redis never re-delivers a job whose worker is still watching it;
- JSON only, no result backend (results live in the store and the ledger);
- one queue per data host, ``c2d.<host>``, so a job runs only where its dataset lives;
- every Redis key is prefixed with the installation's id (``global_keyprefix``;
  ``runner.installation``), so two installations sharing a Redis database never take each
  other's messages. A message that reaches a worker all the same (a job its control plane does
  not know) is logged as misrouted and acknowledged (``log_misrouted``).

A message delivered twice reaches ``runner.host.pipeline.execute_job`` twice; the second claim is a
compare-and-set that fails, and the task acks it. A message that is lost is re-sent by the
reconciler.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import redis
from celery import Celery

from jobs.units import parse_duration
from runner.installation import key_prefix as key_prefix  # senders and tests find it here
from runner.jsonlog import log_fields
from runner.settings import Settings

log = logging.getLogger(__name__)

TASK_RUN = "c2d.run_job"
TASK_DRYRUN = "c2d.dryrun_job"
TASK_UPLOAD = "c2d.upload"
TASK_PREPARE = "c2d.prepare"
VISIBILITY_MARGIN_S = 3600
SENT_KEY = "c2d:sent:{job_id}"
# kombu keeps messages of priorities 3, 6 and 9 in lists named QUEUE + sep + priority.
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


def queue_name(host: str) -> str:
    """The Celery queue of data host ``host``."""
    return f"c2d.{host}"


def visibility_timeout(settings: Settings) -> int:
    """Seconds Redis waits before re-delivering an unacknowledged message."""
    return parse_duration(settings.max_timeout) + VISIBILITY_MARGIN_S


class C2DCelery(Celery):
    """The Celery app, carrying the worker runtime its tasks call (``None`` where it only sends)."""

    runtime: Any = None


def make_celery(settings: Settings) -> C2DCelery:
    """The c2d Celery app for ``settings`` (broker ``settings.redis_url``)."""
    app = C2DCelery("c2d", broker=settings.redis_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=settings.queue,
        task_create_missing_queues=True,
        broker_transport_options={
            "visibility_timeout": visibility_timeout(settings),
            "global_keyprefix": key_prefix(settings),
            "socket_connect_timeout": 5,
            "socket_timeout": 30,
        },
        broker_connection_timeout=5,
        broker_connection_retry_on_startup=True,
        broker_channel_error_retry=True,
        # A job keeps running in its container when Redis blips; the store knows its state.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        task_publish_retry=True,
        task_publish_retry_policy={
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.5,
            "interval_max": 1,
        },
        worker_enable_remote_control=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
        worker_hijack_root_logger=False,
    )

    return app


class Dispatcher:
    """Sends jobs to their data host's queue and tells which jobs are queued.

    Sending is best effort: when Redis does not answer the job stays approved in the store and
    the reconciler sends it later. ``mark`` records a send for ``ttl`` seconds so that several
    reconcilers do not send the same job at once.
    """

    def __init__(self, app: Celery, client: redis.Redis, prefix: str = "") -> None:
        self._app = app
        self._redis = client
        self._prefix = prefix

    @classmethod
    def for_settings(cls, settings: Settings, app: Celery | None = None) -> Dispatcher:
        """A dispatcher on ``settings.redis_url``."""
        client = redis.Redis.from_url(
            settings.redis_url, socket_connect_timeout=3, socket_timeout=10
        )
        return cls(app or make_celery(settings), client, key_prefix(settings))

    def mark(self, job_id: str, ttl: float) -> bool:
        """Record a send of ``job_id``; False if one was recorded in the last ``ttl`` s."""
        key = self._prefix + SENT_KEY.format(job_id=job_id)
        return bool(self._redis.set(key, "1", nx=True, ex=max(1, round(ttl))))

    def send(
        self,
        job_id: str,
        host: str,
        ttl: float = 0.0,
        *,
        task: str = TASK_RUN,
        args: tuple[str, ...] = (),
    ) -> bool:
        """Put ``job_id`` on ``c2d.<host>``; True if sent. Never raises.

        With ``ttl`` the send is skipped (False) when one was recorded in the last ``ttl`` s.
        ``task`` is ``TASK_RUN`` or ``TASK_DRYRUN`` (whose messages ``queued`` lists as
        ``dryrun-<job id>``).
        """
        dryrun = task == TASK_DRYRUN
        try:
            if ttl and not self.mark(("dryrun-" if dryrun else "") + job_id, ttl):
                return False
            self._app.send_task(
                task,
                args=[job_id, *args],
                queue=queue_name(host),
                task_id=("dryrun-" if dryrun else "") + f"{job_id}.{uuid.uuid4().hex}",
            )
        except Exception as exc:  # Redis down or refusing: the reconciler sends it later
            log.warning(
                "job %s not sent to %s (the reconciler retries): %s",
                job_id,
                host,
                exc,
                extra=log_fields(job_id=job_id, data_host=host, event="job.not_sent"),
            )
            return False
        return True

    def queued(self, host: str) -> set[str]:
        """Ids of the jobs that have a message waiting in ``c2d.<host>``."""
        found: set[str] = set()
        for suffix in _PRIORITY_SUFFIXES:
            for raw in self._redis.lrange(self._prefix + queue_name(host) + suffix, 0, -1):
                try:
                    task_id = json.loads(raw)["headers"]["id"]
                except (ValueError, KeyError, TypeError):
                    continue
                found.add(str(task_id).split(".", 1)[0])
        return found

    def close(self) -> None:
        """Close the Redis connections."""
        self._redis.close()
