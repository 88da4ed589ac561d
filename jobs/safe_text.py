"""Text a job controls, made safe to show on a terminal: every hiding character escaped.

A job's code, file names, logs, Dockerfile and reasons reach the data owner's terminal. A raw
``ESC[1A ESC[2K`` there erases the line above; a C1 ``\\x9b`` is the same CSI in one byte; a
bidi override (U+202E) or a zero-width character makes the code read differently from what
runs. ``escape`` shows each such character as its Python escape (``\\x1b``, ``\\u202e``), so the
reader sees that it is there and nothing on the screen moves.

A character is escaped when ``str.isprintable`` says it is not printable (C0 and C1 controls,
DEL, format characters such as the bidi controls and zero-width joiners, line and paragraph
separators, spaces other than the ASCII one, surrogates from undecodable bytes, private and
unassigned code points) or when it is one of the few printable-by-category characters that
draw nothing (Hangul fillers, the combining grapheme joiner, variation selectors). Backslashes
stay as they are: the escapes are for people, not a reversible encoding (``--json`` is that).

``unsafe_name`` is the same rule for names that must not hold any of them (bundle members).
"""

from __future__ import annotations

import re
from typing import Final

MAX_NOTE: Final = 2000
"""The longest note or reason a person may write (``jobs.fields.check_note``)."""

# Printable by category, yet they draw nothing: text can hide behind them.
_INVISIBLE = frozenset(
    [
        *(0x034F, 0x115F, 0x1160, 0x3164, 0xFFA0),  # grapheme joiner, Hangul fillers
        *range(0xFE00, 0xFE10),  # variation selectors
        *range(0xE0100, 0xE01F0),  # variation selectors supplement
    ]
)
# Printable ASCII is always safe: only the rest is looked at (the fast path for logs).
_CANDIDATE = re.compile(r"[^\x20-\x7e]")
_CANDIDATE_MULTILINE = re.compile(r"[^\x20-\x7e\n\t]")


def _hides(char: str) -> bool:
    return not char.isprintable() or ord(char) in _INVISIBLE


def escaped_char(char: str) -> str:
    """``\\x1b``, ``\\u202e`` or ``\\U000e0001``: how one character is shown."""
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def escape(text: str, *, multiline: bool = False) -> str:
    """``text`` with every control, format or invisible character escaped.

    ``multiline`` keeps newlines and tabs (logs, diffs, code); otherwise they are escaped too,
    so a value shown on one line (a table cell, a field) stays on that line.
    """

    def shown(match: re.Match[str]) -> str:
        char = match.group()
        return escaped_char(char) if _hides(char) else char

    return (_CANDIDATE_MULTILINE if multiline else _CANDIDATE).sub(shown, text)


def one_line(value: object) -> str:
    """``str(value)`` escaped for one line of text (newlines and tabs escaped too)."""
    return escape(str(value))


def unsafe_name(name: str) -> str | None:
    """The first character of ``name`` that ``escape`` would escape (newline and tab count),
    or ``None`` when the name is safe to show as it is."""
    for match in _CANDIDATE.finditer(name):
        if _hides(match.group()):
            return match.group()
    return None
