"""A running job's log, live: the data host writes it to Redis, the API reads it from there.

A data host only connects out (to Redis and the API), so the live log travels the way its jobs
arrive: the host's agent appends each job's output to Redis as the container writes it
(``LiveLogWriter``, fed by the executor's log tap), and the API reads it back for whoever the
dataset's policy lets read logs (``read_live``). Nothing ever connects into the host. A log is
derived from the private data, so the host writes one only for a run on a dataset whose
researcher may read logs at any time (``jobs.access.live_log``); any other run's log stays on
the host until the job ended and someone who may read it asks.

The live log keeps what the kept log keeps (``runner.host.sandbox.logs.LogBuffer``), within
the same ``limit``: the first half as it was written, then the newest bytes up to the other
half. Redis holds that and no more:

- ``PREFIX:log:JOB:head``, a string: the first ``limit // 2`` bytes;
- ``PREFIX:log:JOB:tail``, a stream whose entry IDs are byte offsets (``OFFSET-1``), trimmed so
  it holds only entries that start in the last ``limit - limit // 2`` bytes;
- ``PREFIX:log:JOB:meta``, a hash: ``total`` bytes written, ``done`` once the container exited.

A reader asks from a byte offset. Bytes trimmed before it read them are replaced by the same
kind of marker the kept log has (``[c2d: log truncated: N bytes dropped here ...]``), so a reader
that falls behind a job flooding its log sees the cut, never more than the cap in Redis.
Keys expire ``TTL_S`` after the last write (``DONE_TTL_S`` once done): the kept log, in the
artifact store, is the record; this is only the view while it runs.

A broken Redis never breaks a job: the writer logs once and stops writing.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)

FLUSH_S = 0.05
"""How long written bytes wait before they reach Redis (a reader's latency, at most)."""
MAX_ENTRY = 64 * 1024
"""Largest stream entry; a reader looks this far back for the entry holding its offset."""
TTL_S = 24 * 3600
DONE_TTL_S = 600


def keys(prefix: str, job_id: str) -> tuple[str, str, str]:
    """The head, tail and meta keys of ``job_id``'s live log."""
    base = f"{prefix}log:{job_id}:"
    return base + "head", base + "tail", base + "meta"


def marker(dropped: int) -> bytes:
    """What stands where a reader missed ``dropped`` bytes the live log no longer holds."""
    return (
        f"\n[c2d: log truncated: {dropped} bytes dropped here; the log keeps its start and "
        "its newest bytes]\n"
    ).encode()


class LiveLogWriter:
    """Appends one job's output to Redis, batched every ``FLUSH_S``; thread-safe.

    ``feed`` never blocks on Redis and never raises; ``close`` writes what is left and marks
    the log done.
    """

    def __init__(self, client: redis.Redis, prefix: str, job_id: str, limit: int) -> None:
        self._redis = client
        self._head_key, self._tail_key, self._meta_key = keys(prefix, job_id)
        self.job_id = job_id
        self.head_cap = limit // 2
        self.tail_cap = limit - self.head_cap
        # Entries small beside the tail's cap, so trimming whole entries keeps most of it.
        self.entry = max(min(MAX_ENTRY, self.tail_cap // 16), 64)
        self.total = 0
        self._pending = bytearray()
        self._cond = threading.Condition()
        self._closed = False
        self._broken = False
        self._thread = threading.Thread(target=self._run, name=f"livelog-{job_id}", daemon=True)
        self._write(b"", done=False, fresh=True)  # the log exists (empty) from the start
        self._thread.start()

    def feed(self, chunk: bytes) -> None:
        """Queue the next bytes of the job's output."""
        if chunk and not self._broken:
            with self._cond:
                self._pending += chunk
                self._cond.notify()

    def close(self) -> None:
        """Write what is queued, mark the log done, stop the thread (idempotent)."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify()
        self._thread.join(10)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                closed = self._closed
            if not closed:
                time.sleep(FLUSH_S)  # let a burst of small writes become one entry
            with self._cond:
                data, self._pending = bytes(self._pending), bytearray()
            self._write(data, done=closed)
            if closed:
                return

    def _write(self, data: bytes, *, done: bool, fresh: bool = False) -> None:
        if self._broken:
            return
        start = self.total
        head = data[: max(self.head_cap - start, 0)]
        tail, at = data[len(head) :], start + len(head)
        self.total += len(data)
        # Only entries that start within the last tail_cap bytes are kept; a flood's bytes
        # before those never go to Redis at all.
        keep_from = max(self.total - self.tail_cap, self.head_cap)
        if at < keep_from:
            tail, at = tail[keep_from - at :], keep_from
        try:
            pipe = self._redis.pipeline(transaction=True)
            if fresh:  # a container started from its beginning: so does its live log
                pipe.delete(self._head_key, self._tail_key, self._meta_key)
            if head:
                pipe.append(self._head_key, head)
            for n in range(0, len(tail), self.entry):
                piece = tail[n : n + self.entry]
                pipe.xadd(self._tail_key, {"d": piece}, id=f"{at + n}-1")
            if tail:
                pipe.xtrim(self._tail_key, minid=f"{keep_from}-0", approximate=False)
            pipe.hset(self._meta_key, mapping={"total": self.total, "done": int(done)})
            ttl = DONE_TTL_S if done else TTL_S
            for key in (self._head_key, self._tail_key, self._meta_key):
                pipe.expire(key, ttl)
            pipe.execute()
        except Exception as exc:  # Redis down: the job goes on, its live view stops
            self._broken = True
            log.warning("job %s: its live log stopped (Redis: %s)", self.job_id, exc)


@dataclass(frozen=True)
class LiveRead:
    """What ``read_live`` found: the bytes from the asked offset, where to ask next, whether
    a live log exists at all and whether the job's container has exited."""

    data: bytes
    next_offset: int
    exists: bool
    done: bool


def read_live(client: redis.Redis, prefix: str, job_id: str, offset: int) -> LiveRead:
    """The live log of ``job_id`` from byte ``offset`` on, with a marker where bytes the reader
    never saw were dropped. Raises ``redis.RedisError`` when Redis does not answer."""
    head_key, tail_key, meta_key = keys(prefix, job_id)
    redis: Any = client  # redis-py's stubs type every reply as bytes | str | None
    total_raw, done_raw = redis.hmget(meta_key, ["total", "done"])
    if total_raw is None:
        return LiveRead(b"", offset, exists=False, done=False)
    total, done = int(total_raw), bool(int(done_raw or 0))
    out = bytearray()
    offset = max(offset, 0)
    head_len = int(redis.strlen(head_key))
    if offset < head_len:
        out += redis.getrange(head_key, offset, head_len - 1)
        offset = head_len
    if offset < total:
        lowest = max(offset - MAX_ENTRY, 0)
        for entry_id, fields in redis.xrange(tail_key, min=f"{lowest}-0", max="+"):
            start = int(entry_id.split(b"-", 1)[0])
            piece = fields[b"d"]
            if start + len(piece) <= offset:
                continue
            if start > offset:
                out += marker(start - offset)
                offset = start
            out += piece[offset - start :]
            offset = start + len(piece)
    return LiveRead(bytes(out), offset, exists=True, done=done)


class LiveLogs:
    """The live logs of one installation on its Redis (``settings.redis_url``, keys under
    ``transport.key_prefix``), connected on first use; the host writes, the API reads."""

    def __init__(self, redis_url: str, prefix: str) -> None:
        self.redis_url = redis_url
        self.prefix = prefix
        self._client: redis.Redis | None = None
        self._lock = threading.Lock()

    def _redis(self) -> redis.Redis:
        with self._lock:
            if self._client is None:
                import redis

                self._client = redis.Redis.from_url(
                    self.redis_url, socket_connect_timeout=3, socket_timeout=5
                )
            return self._client

    def writer(self, job_id: str, limit: int) -> LiveLogWriter | None:
        """A writer for ``job_id``'s run, or None when Redis cannot take it (never raises)."""
        try:
            writer = LiveLogWriter(self._redis(), self.prefix, job_id, limit)
        except Exception as exc:
            log.warning("job %s: no live log (Redis: %s)", job_id, exc)
            return None
        return None if writer._broken else writer

    def read(self, job_id: str, offset: int) -> LiveRead:
        """``read_live`` on this installation's Redis."""
        return read_live(self._redis(), self.prefix, job_id, offset)

    def close(self) -> None:
        """Close the Redis connections."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
