"""The pages' pure parts: output previews, a diff cut into files, the template's filters."""

from __future__ import annotations

import difflib

import pytest

from jobs.models import OutputFile
from runner.artifacts import ArtifactStore
from runner.control.previews import MAX_CELL, MAX_COLUMNS, MAX_ROWS, MAX_TEXT, preview
from runner.control.web.account import safe_next
from runner.control.web.highlight import MAX_HIGHLIGHT, diff_sections, highlighted
from runner.control.web.render import age, block, render


@pytest.fixture
def store(tmp_path):
    return ArtifactStore(tmp_path / "artifacts")


def _preview(store, name: str, data: bytes):
    digest, size = store.put_bytes(data)
    return preview(store, OutputFile(name=name, sha256=digest, bytes=size))


def test_a_csv_preview_is_its_first_rows_capped_in_rows_columns_and_cells(store):
    wide = ",".join(f"c{i}" for i in range(MAX_COLUMNS + 5))
    rows = "\n".join(f"{i},{'x' * (MAX_CELL + 50)}" for i in range(100))
    shown = _preview(store, "out/scores.csv", f"{wide}\n{rows}\n".encode())
    assert shown.type == "CSV table"
    assert len(shown.rows) == MAX_ROWS
    assert len(shown.rows[0]) == MAX_COLUMNS
    assert len(shown.rows[1][1]) == MAX_CELL
    assert shown.truncated
    small = _preview(store, "t.tsv", b"a\tb\n1\t2\n")
    assert (small.rows, small.truncated) == ([["a", "b"], ["1", "2"]], False)


def test_a_text_preview_stops_at_its_cap_and_never_reads_the_whole_file(store):
    big = ("é" * 40_000).encode()  # two bytes a character; the read cuts one in half
    shown = _preview(store, "notes.txt", big)
    assert shown.text == "é" * MAX_TEXT
    assert shown.truncated
    assert _preview(store, "m.json", b'{"a": 1}').type == "JSON"


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"PK\x03\x04rest", "zip archive"),
        (b"PAR1....", "Parquet table"),
        (b"\x80\x04\x95pickle", "Python pickle"),
        (b"text\x00with nul", "binary"),
        (b"\xff\xfe not utf-8", "binary"),
    ],
)
def test_binary_outputs_are_named_not_shown(store, data, kind):
    shown = _preview(store, "model.csv", data)
    assert shown.type.startswith(kind)
    assert (shown.rows, shown.text) == ([], None)


def test_a_diff_is_cut_per_file_by_its_hunk_counts():
    old = ["keep\n", "-- a SQL comment\n", "x\n"]
    new = ["keep\n", "x\n", "+++ looks like a header\n"]
    text = "".join(difflib.unified_diff(old, new, "a/q.sql", "b/q.sql"))
    text += "".join(difflib.unified_diff([], ["print(1)\n"], "/dev/null", "b/new.py"))
    text += "Binary files a/m.bin and b/m.bin differ\n"
    sections = diff_sections(text)
    assert [s.name for s in sections] == ["q.sql", "new.py", "m.bin"]
    # The removed "--- a SQL comment" line and the added "+++ ..." line stay in q.sql.
    assert (sections[0].added, sections[0].removed) == (1, 1)
    assert "--- a SQL comment" in sections[0].text
    assert (sections[1].added, sections[2].binary) == (1, True)
    assert "".join(s.text for s in sections) == text


def test_highlighting_escapes_html_and_hiding_characters_and_gives_up_on_huge_text():
    html = highlighted("+x = '<b>'\x1b[2J\u202e\n", "diff")
    assert "&lt;b&gt;" in html
    assert "\\x1b[2J\\u202e" in html
    assert "\x1b" not in html
    assert "<span" in html
    huge = highlighted("+" + "y" * MAX_HIGHLIGHT + "<i>", "diff")
    assert "<span" not in huge
    assert huge.endswith("&lt;i&gt;")


def test_template_values_are_one_line_and_escaped_blocks_keep_their_lines():
    shown = render("error.html", viewer=None, user=None, csrf="", path="/ui/x", reviewer=False,
                   title="t\n<b>", kind="k", message="a\nb<i>\u202e")  # fmt: skip
    assert "<h1>t\\x0a&lt;b&gt;</h1>" in shown
    assert "a\nb&lt;i&gt;\\u202e" in shown
    assert str(block("a\n\x1b<b>")) == "a\n\\x1b&lt;b&gt;"


def test_age_and_the_places_sign_in_may_send_a_person():
    assert [age(100.0, now) for now in (130, 400, 7300, 200_000)] == ["30 s", "5 min", "2 h", "2 d"]
    assert safe_next("/ui/jobs/abc/review") == "/ui/jobs/abc/review"
    for bad in (None, "", "https://x.example/ui/", "//x.example", "/ui/../v1", "/ui/a\r\nb", "/v1"):
        assert safe_next(bad) is None, bad
