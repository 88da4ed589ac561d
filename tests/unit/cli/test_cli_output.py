"""Output routing: data on stdout (one JSON document with --json), people text on stderr."""

from __future__ import annotations

import io
import json
import time

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


ATTACK = "ok\x1b[1A\x1b[2K\u202eevil\x9b2J [red]x[/red] :smile:"


def _printed(out: Output, text: str) -> None:
    """Every way the CLI prints people text, each handed `text`."""
    out.say(text)
    out.warn(text)
    out.fields([("reason", text)])
    out.table(["file"], [[text]], empty="none")
    out.text_block(text + "\n", syntax="diff")
    out.text_block(text)


def _live(out: Output, text: str) -> None:
    """The status line and the download bars (rich redraws them with its own ESC[1A ESC[2K)."""
    with out.status(text) as update:
        update(text + "!")
    with out.downloads() as observer:
        observer.start(text, 1)
        observer.advance(1)
        observer.finish(text)


@pytest.mark.parametrize("terminal", [False, True], ids=["plain", "rich"])
def test_job_text_is_shown_escaped_and_markup_literally(terminal: bool) -> None:
    stdout = io.StringIO()
    stderr: io.StringIO = Terminal() if terminal else io.StringIO()
    out = Output(False, stdout=stdout, stderr=stderr)
    assert out.rich is terminal
    _printed(out, ATTACK)
    out.result({"log": ATTACK}, ATTACK)
    shown = "ok\\x1b[1A\\x1b[2K\\u202eevil\\x9b2J [red]x[/red] :smile:"
    for stream in (stdout.getvalue(), stderr.getvalue()):
        assert "\u202e" not in stream
        assert "\x9b" not in stream
        assert "\x1b[1A" not in stream
        assert "\x1b[2K" not in stream
        assert shown in stream
    # rich markup and emoji codes in job text are printed as they are, never interpreted
    assert stderr.getvalue().count(shown) >= 6
    assert stdout.getvalue() == shown + "\n"
    live = Terminal() if terminal else io.StringIO()
    _live(Output(False, stdout=io.StringIO(), stderr=live), ATTACK)
    assert shown in live.getvalue()
    assert "\u202e" not in live.getvalue()
    assert "ok\x1b" not in live.getvalue()


def test_json_output_is_the_raw_document_with_json_escapes() -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    out = Output(True, stdout=stdout, stderr=stderr)
    out.say(ATTACK)
    out.result({"log": ATTACK}, ATTACK)
    assert "\x1b" not in stdout.getvalue()
    assert "\u202e" not in stdout.getvalue()
    assert "\\u001b[1A" in stdout.getvalue()
    assert "\\u202e" in stdout.getvalue()
    assert json.loads(stdout.getvalue()) == {"log": ATTACK}  # nothing lost for scripts
    assert "\x1b" not in stderr.getvalue()


def test_a_field_or_cell_cannot_forge_a_line_of_its_own() -> None:
    stderr = io.StringIO()
    out = Output(False, stdout=io.StringIO(), stderr=stderr)
    out.fields([("reason", "failed\nstate   approved"), ("name", "x")])
    out.table(["file", "bytes"], [["a.py\n b.py", 3]], empty="none")
    lines = stderr.getvalue().splitlines()
    assert lines[0] == "reason  failed\\x0astate   approved"
    assert len(lines) == 4


def test_a_status_with_log_lines_keeps_its_lines_and_escapes_the_rest() -> None:
    import io

    from rich.console import Console

    err = io.StringIO()
    out = Output(False, stdout=io.StringIO(), stderr=err, rich=True)
    out.console = Console(file=err, force_terminal=True, width=80, highlight=False)
    with out.status("job j: running") as update:
        update("job j: running (1 s)\n  | tick \x1b[2J[red]0")
        time.sleep(0.3)  # the live display redraws a few times a second
    shown = err.getvalue()
    assert "job j: running (1 s)" in shown
    assert "\n  | tick" in shown  # its own line
    assert "\x1b[2J" not in shown.replace("\x1b[?25l", "").replace("\x1b[?25h", "")
    assert "\\x1b[2J[red]0" in shown
