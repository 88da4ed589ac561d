"""The build log kept for the researcher and the owner, and reading the engine's stream."""

from __future__ import annotations

from runner.host.images.buildlog import BuildLog, StreamFacts, network_trouble


def test_log_keeps_head_and_tail_within_the_cap_and_says_what_it_dropped() -> None:
    log = BuildLog(1000)
    log.write("Step 1/9 : FROM base\n")
    for n in range(200):
        log.write(f"line {n}\n")
    log.write("the real error\n")
    text = log.text()
    assert text.startswith("Step 1/9 : FROM base\n")
    assert text.endswith("the real error\n")
    assert "bytes of the build log dropped]" in text
    assert len(text.encode()) <= 1000 + 100  # the note itself is the only excess


def test_log_under_the_cap_is_kept_whole_without_colour_codes() -> None:
    log = BuildLog(10_000)
    log.write("\x1b[91mboom\n\x1b[0m")
    assert log.text() == "boom\n"
    assert log.dropped == 0


def test_stream_facts_follow_the_classic_builder() -> None:
    facts, log = StreamFacts(), BuildLog(10_000)
    for chunk in [
        {"stream": "Step 2/3 : RUN sleep 100"},
        {"stream": "\n"},
        {"stream": " ---> Running in 3eef49301b7f\n"},
    ]:
        facts.feed(chunk, log)
    assert facts.running == "3eef49301b7f"
    assert facts.step == "Step 2/3 : RUN sleep 100"
    facts.feed({"stream": "Removing intermediate container 3eef49301b7f\n"}, log)
    facts.feed({"stream": " ---> 7ceced401167\n"}, log)
    assert facts.running is None
    assert facts.made == ["7ceced401167"]
    facts.feed({"aux": {"ID": "sha256:" + "a" * 64}}, log)
    assert facts.image_id == "sha256:" + "a" * 64
    facts.feed({"errorDetail": {"message": "bad"}, "error": "returned a non-zero code: 1"}, log)
    assert facts.error == "returned a non-zero code: 1"
    assert log.text().endswith("returned a non-zero code: 1\n")


def test_network_trouble_recognizes_the_usual_tools() -> None:
    assert network_trouble("socket.gaierror: [Errno -3] Temporary failure in name resolution")
    assert network_trouble("curl: (6) Could not resolve host: pypi.org")
    assert network_trouble(
        "Err:1 http://deb.debian.org bookworm InRelease\n"
        "  Temporary failure resolving 'deb.debian.org'"
    )
    assert network_trouble("NewConnectionError('<...>: Failed to establish a new connection')")
    assert not network_trouble("ModuleNotFoundError: No module named 'foo'")
