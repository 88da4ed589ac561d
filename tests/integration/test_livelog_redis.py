"""A running job's live log on a real Redis: what the data host writes is what the API reads,
within the kept log's cap, with the cut marked for a reader who fell behind; a Redis that does
not answer never stops the job."""

from __future__ import annotations

import time
import uuid

import pytest
import redis

from runner.livelog import LiveLogs, keys
from tests.kit.procs import free_port

pytestmark = pytest.mark.redis

LIMIT = 2048  # head 1024, tail 1024


@pytest.fixture
def live(redis_url: str) -> LiveLogs:
    made = LiveLogs(redis_url, f"c2d.test/{uuid.uuid4().hex[:8]}:")
    yield made
    made.close()


def read_all(live: LiveLogs, job: str, offset: int = 0) -> tuple[bytes, int, bool]:
    got = live.read(job, offset)
    return got.data, got.next_offset, got.done


def test_a_reader_gets_every_byte_once_as_it_is_written(live: LiveLogs) -> None:
    writer = live.writer("job-a", LIMIT)
    assert writer is not None
    assert live.read("job-a", 0).exists  # the log exists, empty, once the run starts
    writer.feed(b"tick 0\n")
    time.sleep(0.2)
    first, offset, done = read_all(live, "job-a")
    assert (first, offset, done) == (b"tick 0\n", 7, False)
    writer.feed(b"tick 1\n")
    writer.close()
    rest, offset, done = read_all(live, "job-a", offset)
    assert (rest, offset, done) == (b"tick 1\n", 14, True)


def test_redis_holds_no_more_than_the_cap_and_a_late_reader_sees_the_cut(
    live: LiveLogs, redis_url: str
) -> None:
    writer = live.writer("job-b", LIMIT)
    assert writer is not None
    for n in range(200):  # 200 lines of 40 bytes: 8000 bytes, four times the cap
        writer.feed(f"line {n:04d} {'x' * 29}\n".encode())
    writer.close()
    text, offset, done = read_all(live, "job-b")
    assert done
    assert offset == 8000
    head, marker, tail = text.partition(b"[c2d: log truncated: ")
    assert head.startswith(b"line 0000")
    assert len(head) == 1024 + 1  # the first half, and the marker's newline
    assert marker
    dropped = int(tail.split(b" ", 1)[0])
    kept_tail = tail.split(b"]\n", 1)[1]
    assert len(kept_tail) <= 1024
    assert 1024 + dropped + len(kept_tail) == 8000
    assert kept_tail.endswith(b"line 0199 " + b"x" * 29 + b"\n")
    client = redis.Redis.from_url(redis_url)
    head_key, tail_key, meta_key = keys(live.prefix, "job-b")
    stored = client.strlen(head_key) + sum(
        len(f[b"d"])
        for _, f in client.xrange(tail_key)  # type: ignore[union-attr]
    )
    assert stored <= LIMIT
    assert 0 < client.ttl(meta_key) <= 600  # done: kept ten minutes, the kept log is the record
    client.close()


def test_a_redis_that_does_not_answer_never_stops_the_job() -> None:
    dead = LiveLogs(f"redis://127.0.0.1:{free_port()}/0", "c2d.test/dead:")
    writer = dead.writer("job-c", LIMIT)
    assert writer is None  # no live log; the run goes on
    with pytest.raises(redis.RedisError):
        dead.read("job-c", 0)
    dead.close()
