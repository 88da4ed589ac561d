"""The one sanitizer of job-controlled text: what hides is shown escaped, the rest untouched."""

from __future__ import annotations

import pytest

from jobs.safe_text import escape, one_line, unsafe_name

ERASE_LINE_ABOVE = "\x1b[1A\x1b[2K"


def test_cursor_movement_and_erasing_are_shown_not_done() -> None:
    text = f"print('ok')  # {ERASE_LINE_ABOVE}exfiltrate()"
    shown = escape(text)
    assert "\x1b" not in shown
    assert shown == "print('ok')  # \\x1b[1A\\x1b[2Kexfiltrate()"


def test_a_bidi_override_is_shown_escaped() -> None:
    shown = escape("access = 'user\u202e \u2066# admin\u2069\u2066'")
    assert "\u202e" not in shown
    assert "\u2066" not in shown
    assert "\u2069" not in shown
    assert "\\u202e" in shown
    assert "\\u2066" in shown
    assert "\\u2069" in shown


def test_the_c1_csi_byte_and_del_are_escaped() -> None:
    assert escape("a\x9b1Ab\x7f") == "a\\x9b1Ab\\x7f"


@pytest.mark.parametrize(
    ("char", "shown"),
    [
        ("\u200b", "\\u200b"),  # zero-width space
        ("\u200d", "\\u200d"),  # zero-width joiner
        ("\u200e", "\\u200e"),  # left-to-right mark
        ("\u061c", "\\u061c"),  # Arabic letter mark
        ("\u2028", "\\u2028"),  # line separator
        ("\u2029", "\\u2029"),  # paragraph separator
        ("\ufeff", "\\ufeff"),  # zero-width no-break space
        ("\u3164", "\\u3164"),  # Hangul filler: a "letter" that draws nothing
        ("\ufe0f", "\\ufe0f"),  # variation selector
        ("\U000e0041", "\\U000e0041"),  # tag letter A
        ("\udcff", "\\udcff"),  # an undecodable byte (surrogateescape)
        ("\x00", "\\x00"),
        ("\r", "\\x0d"),
    ],
)
def test_format_and_invisible_characters_are_escaped(char: str, shown: str) -> None:
    assert escape(f"a{char}b") == f"a{shown}b"
    assert unsafe_name(f"x{char}") == char


def test_lines_and_tabs_are_kept_only_in_multiline_text() -> None:
    assert escape("a\n\tb\x1b", multiline=True) == "a\n\tb\\x1b"
    assert escape("a\n\tb") == "a\\x0a\\x09b"
    assert one_line("reason\nstate  succeeded") == "reason\\x0astate  succeeded"


def test_ordinary_text_is_left_as_it_is() -> None:
    text = "héllo wörld — 数据 ✓ [red]x[/red] C:\\path\\x1b 😀"
    assert escape(text) == text
    assert escape(text, multiline=True) == text
    assert unsafe_name("src/model_ü.py") is None


def test_unsafe_name_counts_newlines_and_tabs() -> None:
    assert unsafe_name("a\nb") == "\n"
    assert unsafe_name("a\tb") == "\t"
    assert unsafe_name("\x1b[2Kname.py") == "\x1b"
