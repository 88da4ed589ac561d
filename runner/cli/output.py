"""Where the CLI writes: data on stdout, people on stderr.

With `--json` a command prints exactly one JSON document on stdout and nothing else there;
without it, stdout carries only the command's primary value (a job id, a token, log text) so
that `JOB=$(c2d submit ...)` works. Tables, progress, hints and errors always go to stderr, drawn
with rich only when stderr is a terminal and `--json` is off, and as plain text otherwise.

Much of what is shown comes from a job or a researcher: code, diffs, file names, logs, reasons.
So every string passes through `jobs.safe_text.escape` on its way out (control characters, bidi
overrides and invisible characters shown as `\\x1b`, `\\u202e`), and rich draws it as a `Text`,
never parsing it as markup (`[red]` stays `[red]`). Cells and fields are one line each (their
newlines and tabs escaped too); messages, text blocks and the primary value keep their lines.
With `--json` the document is written as it is: JSON escapes every control character itself.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer

from jobs.safe_text import escape, one_line

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import TaskID

# rich is imported where it draws, only when stderr is a terminal: a command whose output goes
# to a pipe (a script, a test) never loads it.

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout (people text on stderr).")
]

_current: ContextVar[Output | None] = ContextVar("c2d_output", default=None)


class Output:
    """The writer of one command run; `Output.start(json_mode)` makes it the current one."""

    def __init__(
        self,
        json_mode: bool,
        *,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
        rich: bool | None = None,
    ) -> None:
        self.json_mode = json_mode
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        if rich is None:
            rich = self.stderr.isatty() and not json_mode
        self.rich = rich
        self.console: Console | None = None
        if rich:
            from rich.console import Console

            self.console = Console(file=self.stderr, highlight=False)
        self.emitted = False

    @classmethod
    def start(cls, json_mode: bool, **kwargs: Any) -> Output:
        """Create the output of the running command and remember it for error reporting."""
        out = cls(json_mode, **kwargs)
        _current.set(out)
        return out

    @staticmethod
    def reset() -> None:
        """Forget the previous command's output (several runs in one process, as in tests)."""
        _current.set(None)

    @staticmethod
    def current() -> Output | None:
        """The output of the running command, if it got as far as creating one."""
        return _current.get()

    # -- stdout ----------------------------------------------------------------------------

    def result(self, document: Any, primary: str | None = None) -> None:
        """The command's data: the JSON document with --json, else `primary` (if any)."""
        if self.json_mode:
            if self.emitted:
                raise RuntimeError("a command printed a second JSON document")
            self.stdout.write(json.dumps(document, indent=2, sort_keys=True) + "\n")
            self.emitted = True
        elif primary is not None:
            primary = escape(primary, multiline=True)
            self.stdout.write(primary if primary.endswith("\n") or not primary else primary + "\n")
        self.stdout.flush()

    def stream(self, text: str) -> None:
        """The next piece of a primary value that arrives in pieces (a followed log), escaped
        like the rest, written at once."""
        self.stdout.write(escape(text, multiline=True))
        self.stdout.flush()

    # -- stderr ----------------------------------------------------------------------------

    def say(self, text: str, style: str | None = None) -> None:
        """A message for people (its own newlines kept, everything else that hides escaped)."""
        text = escape(text, multiline=True)
        if self.console:
            from rich.text import Text

            # soft_wrap: long digests and paths wrap in the terminal, not as inserted newlines.
            self.console.print(Text(text, style=style or ""), soft_wrap=True)
        else:
            self.stderr.write(text + "\n")
            self.stderr.flush()

    def hint(self, text: str) -> None:
        """A suggestion of what to do next."""
        self.say(f"hint: {text}", style="dim")

    def warn(self, text: str) -> None:
        """Something the person should know but that does not stop the command."""
        self.say(f"warning: {text}", style="yellow")

    def error(self, text: str) -> None:
        """The message of the error that ends the command."""
        self.say(f"error: {text}", style="bold red")

    def fields(self, pairs: Sequence[tuple[str, Any]]) -> None:
        """Aligned `key: value` lines, each value on its one line."""
        width = max((len(k) for k, _ in pairs), default=0)
        for key, value in pairs:
            shown = "-" if value is None or value == "" else one_line(value)
            label = one_line(key).ljust(width)
            if self.console:
                from rich.text import Text

                self.console.print(Text.assemble((label, "bold"), "  ", shown), soft_wrap=True)
            else:
                self.say(f"{label}  {shown}")

    def table(self, columns: Sequence[str], rows: Sequence[Sequence[Any]], empty: str) -> None:
        """A table of `rows`, or the sentence `empty` when there are none."""
        if not rows:
            self.say(empty)
            return
        cells = [["-" if v is None or v == "" else one_line(v) for v in row] for row in rows]
        if self.console:
            from rich.table import Table
            from rich.text import Text

            table = Table(header_style="bold", box=None, pad_edge=False)
            for column in columns:
                table.add_column(Text(column), overflow="fold")
            for row in cells:
                table.add_row(*(Text(c) for c in row))
            self.console.print(table)
            return
        widths = [max(len(c) for c in col) for col in zip(columns, *cells, strict=False)]
        for row in [list(columns), *cells]:
            self.say("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())

    def text_block(self, text: str, syntax: str | None = None) -> None:
        """A block of text such as a diff or a log (highlighted when rich), lines kept."""
        text = escape(text, multiline=True)
        if self.console and syntax:
            from rich.syntax import Syntax

            self.console.print(Syntax(text, syntax, theme="ansi_dark", background_color="default"))
        else:
            self.stderr.write(text if text.endswith("\n") else text + "\n")
            self.stderr.flush()

    @contextmanager
    def status(self, text: str) -> Iterator[Callable[[str], None]]:
        """A live status line; yields `update(text)`. Plain mode prints each new text once.

        The text may have lines (a followed job's last log lines under its state); everything
        else in it that could redraw the terminal is escaped."""
        if self.console:
            from rich.text import Text

            def shown(t: str) -> Text:
                return Text(escape(t, multiline=True).replace("\t", " "))

            with self.console.status(shown(text)) as live:
                yield lambda t: live.update(shown(t))
            return
        self.say(text)
        last = [text]

        def update(t: str) -> None:
            if t != last[0]:
                last[0] = t
                self.say(t)

        yield update

    def downloads(self) -> DownloadBars | DownloadLines:
        """A download observer: progress bars on a terminal, one line per file otherwise."""
        return DownloadBars(self.console) if self.console else DownloadLines(self)


def short_time(stamp: str | None) -> str | None:
    """`2024-05-01T12:00:03.123456Z` -> `2024-05-01 12:00:03` for tables (UTC)."""
    if not stamp:
        return stamp
    return stamp.replace("T", " ").split(".")[0].removesuffix("Z")


class DownloadBars:
    """Rich progress bars, one per file (a `runner.client.DownloadObserver`)."""

    def __init__(self, console: Console) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TransferSpeedColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=console,
            transient=False,
        )
        self.task: TaskID | None = None

    def __enter__(self) -> DownloadBars:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def start(self, name: str, total: int) -> None:
        self.task = self.progress.add_task(one_line(name), total=total)

    def advance(self, nbytes: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, nbytes)

    def finish(self, name: str) -> None:
        self.task = None


class DownloadLines:
    """One plain line per finished file (a `runner.client.DownloadObserver`)."""

    def __init__(self, out: Output) -> None:
        self.out = out
        self.total = 0

    def __enter__(self) -> DownloadLines:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def start(self, name: str, total: int) -> None:
        self.total = total

    def advance(self, nbytes: int) -> None:
        pass

    def finish(self, name: str) -> None:
        self.out.say(f"downloaded {one_line(name)} ({self.total} bytes)")
