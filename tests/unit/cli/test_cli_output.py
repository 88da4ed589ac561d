"""Output routing: data on stdout (one JSON document with --json), people text on stderr."""

from __future__ import annotations

import io
import json

import pytest

from runner.cli.output import Output


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_json_mode_prints_one_document_and_people_text_on_stderr() -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    out = Output(True, stdout=stdout, stderr=stderr)
    out.say("registered dataset")
    out.table(["name"], [["patients"]], empty="none")
    out.result({"name": "patients"}, "patients")
    assert json.loads(stdout.getvalue()) == {"name": "patients"}
    assert "registered dataset" in stderr.getvalue()
    assert "patients" in stderr.getvalue()
    with pytest.raises(RuntimeError):
        out.result({"again": True})


def test_plain_mode_prints_only_the_primary_value_on_stdout() -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    out = Output(False, stdout=stdout, stderr=stderr)
    out.table(["id", "state"], [["j1", "pending"], ["j22", None]], empty="none")
    out.result([{"id": "j1"}], "j1")
    assert stdout.getvalue() == "j1\n"
    assert stderr.getvalue().splitlines() == ["id   state", "j1   pending", "j22  -"]


def test_no_primary_value_means_an_empty_stdout() -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    Output(False, stdout=stdout, stderr=stderr).result({"x": 1})
    assert stdout.getvalue() == ""


def test_rich_only_on_a_terminal_and_never_with_json() -> None:
    assert Output(False, stdout=io.StringIO(), stderr=Terminal()).rich
    assert not Output(True, stdout=io.StringIO(), stderr=Terminal()).rich
    assert not Output(False, stdout=io.StringIO(), stderr=io.StringIO()).rich


def test_plain_status_prints_each_new_state_once() -> None:
    stderr = io.StringIO()
    out = Output(False, stdout=io.StringIO(), stderr=stderr)
    with out.status("job j1: pending") as update:
        for text in ["job j1: pending", "job j1: running", "job j1: running", "job j1: failed"]:
            update(text)
    assert stderr.getvalue().splitlines() == [
        "job j1: pending",
        "job j1: running",
        "job j1: failed",
    ]


def test_the_rich_path_draws_tables_fields_diffs_and_bars_on_stderr() -> None:
    stdout, stderr = io.StringIO(), Terminal()
    out = Output(False, stdout=stdout, stderr=stderr)
    out.table(["id", "state"], [["j1", "[bold]pending"]], empty="none")
    out.fields([("code", "sha256:abc"), ("reason", None)])
    out.text_block("--- a/x\n+++ b/x\n+new line\n", syntax="diff")
    with out.status("job j1: running") as update:
        update("job j1: succeeded")
    with out.downloads() as bars:
        bars.start("model.skops", 2048)
        bars.advance(1024)
        bars.advance(1024)
        bars.finish("model.skops")
    text = stderr.getvalue()
    for expected in ("j1", "[bold]pending", "sha256:abc", "new line", "model.skops"):
        assert expected in text
    assert stdout.getvalue() == ""
