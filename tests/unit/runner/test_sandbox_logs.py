"""A job's log keeps its head and tail within the limit and says exactly what it dropped."""

from __future__ import annotations

import re

from runner.host.sandbox.logs import LogBuffer, cap_tail


def test_short_log_is_kept_whole() -> None:
    buf = LogBuffer(100)
    buf.feed(b"hello\n")
    buf.feed(b"world\n")
    assert buf.render() == (b"hello\nworld\n", False)


def test_log_of_exactly_the_limit_is_not_marked() -> None:
    buf = LogBuffer(10)
    buf.feed(b"0123456789")
    assert buf.render() == (b"0123456789", False)


def test_long_log_keeps_head_and_tail_and_counts_the_gap() -> None:
    buf = LogBuffer(1000)
    stream = b"".join(f"line {i:06d}\n".encode() for i in range(100_000))
    for start in range(0, len(stream), 4096):
        buf.feed(stream[start : start + 4096])
    log, truncated = buf.render()
    assert truncated
    head, _, rest = log.partition(b"\n[c2d: log truncated: ")
    assert head == stream[:500]
    assert log.endswith(stream[-500:])
    found = re.match(rb"(\d+) bytes dropped here", rest)
    assert found is not None
    assert int(found.group(1)) == len(stream) - 1000
    assert f"of {len(stream)} bytes]".encode() in log


def test_one_huge_chunk_is_cut_the_same_way() -> None:
    buf = LogBuffer(8)
    buf.feed(b"AAAA" + b"x" * 10_000 + b"ZZZZ")
    log, truncated = buf.render()
    assert truncated
    assert log.startswith(b"AAAA\n[c2d: log truncated: 10000 bytes dropped here")
    assert log.endswith(b"]\nZZZZ")


def test_read_back_copy_keeps_its_tail_and_says_so() -> None:
    log, truncated = cap_tail(b"a" * 50 + b"END", 10, note="[note]\n")
    assert truncated
    assert log == b"[note]\n[c2d: log truncated: 43 earlier bytes dropped]\n" + b"a" * 7 + b"END"
    assert cap_tail(b"short", 10) == (b"short", False)
