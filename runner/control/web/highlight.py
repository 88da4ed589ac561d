"""Code, diffs and Dockerfiles as highlighted HTML (Pygments), bounded, escaped for people.

``highlighted`` escapes control, bidi and invisible characters (``jobs.safe_text.escape``)
before Pygments sees the text, and Pygments' HTML formatter escapes HTML itself. Past
``MAX_HIGHLIGHT`` characters a text is shown plain (still escaped): colouring megabytes costs
the server more than it helps a reader. ``diff_sections`` splits a unified diff into one part
per file, following each hunk's line counts, so a line of code that happens to start with
``---`` cannot start a section of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache

from markupsafe import Markup
from markupsafe import escape as html_escape
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import DiffLexer, DockerLexer, PythonLexer, TextLexer

from jobs.safe_text import escape

MAX_HIGHLIGHT = 256 * 1024
CSS_SCOPE = ".hl"
_LEXERS: dict[str, type[Lexer]] = {
    "diff": DiffLexer,
    "docker": DockerLexer,
    "python": PythonLexer,
    "text": TextLexer,
}
_HUNK = re.compile(r"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")


def highlighted(text: str | None, language: str = "text") -> Markup:
    """``text`` as HTML spans of Pygments' classes (plain past ``MAX_HIGHLIGHT``)."""
    shown = escape(text or "", multiline=True)
    if len(shown) > MAX_HIGHLIGHT or language not in _LEXERS:
        return html_escape(shown)
    lexer = _LEXERS[language](stripnl=False, ensurenl=False)
    # Pygments' HTML formatter escapes <, >, &, quotes in every token it writes.
    return Markup(highlight(shown, lexer, HtmlFormatter(nowrap=True)))  # noqa: S704


@cache
def stylesheet() -> str:
    """The CSS of the highlighting classes, scoped to ``.hl``, from Pygments' default style."""
    return str(HtmlFormatter(style="default").get_style_defs(CSS_SCOPE)) + "\n"


@dataclass
class DiffSection:
    """One file's part of a unified diff."""

    name: str
    lines: list[str] = field(default_factory=list)
    added: int = 0
    removed: int = 0
    binary: bool = False

    @property
    def text(self) -> str:
        return "".join(self.lines)


def _name(old: str, new: str) -> str:
    target = new if new != "/dev/null" else old
    return target.removeprefix("b/").removeprefix("a/")


def diff_sections(text: str) -> list[DiffSection]:
    """The per-file parts of ``jobs.bundle.diff``'s output, in order."""
    lines = text.splitlines(keepends=True)
    sections: list[DiffSection] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("Binary files "):
            words = line.split(" ")
            name = _name(words[2], words[4]) if len(words) > 4 else line.strip()
            sections.append(DiffSection(name, [line], binary=True))
            i += 1
            continue
        if line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            old = line[4:].rstrip("\n").split("\t")[0]
            new = lines[i + 1][4:].rstrip("\n").split("\t")[0]
            section = DiffSection(_name(old, new), [line, lines[i + 1]])
            sections.append(section)
            i = _hunks(lines, i + 2, section)
            continue
        if not sections:
            sections.append(DiffSection("(diff)"))
        sections[-1].lines.append(line)
        i += 1
    return sections


def _hunks(lines: list[str], i: int, section: DiffSection) -> int:
    """Read the hunks of one file from ``lines[i]`` on; the index after them."""
    while i < len(lines):
        match = _HUNK.match(lines[i])
        if match is None:
            break
        old = int(match.group(1) or 1)
        new = int(match.group(2) or 1)
        section.lines.append(lines[i])
        i += 1
        while i < len(lines) and (old > 0 or new > 0 or lines[i].startswith("\\")):
            line = lines[i]
            kind = line[:1]
            if kind == "-":
                old -= 1
                section.removed += 1
            elif kind == "+":
                new -= 1
                section.added += 1
            elif kind == " " or line == "\n":
                old -= 1
                new -= 1
            elif kind != "\\":
                break
            section.lines.append(line)
            i += 1
    return i
