"""Everything a job controls reaches the owner's browser escaped twice: as HTML, and with its
control, bidi and invisible characters shown as ``\\x1b`` or ``\\u202e`` (as in the CLI)."""

from __future__ import annotations

import io
import re
import tarfile

from jobs.schema_records import DryRun
from tests.kit.worlds import ControlWorld

SCRIPT = "<script>alert(1)</script>"
OWN_SCRIPTS = [
    '<script src="/ui/static/live.js" defer>',
    '<script src="/ui/static/sign.js" defer>',
]
HIDING = ("\x1b", "\u202e", "\u200b", "\x9b")


def _tar(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _clean_fragment(html: str) -> None:
    for char in HIDING:
        assert char not in html, repr(char)
    assert SCRIPT not in html
    scripts = re.findall(r"<script[^>]*>", html)
    # A fragment has none; a page has the page's own live.js and sign.js, nothing else.
    assert scripts in ([], OWN_SCRIPTS), scripts


def _clean(html: str) -> None:
    _clean_fragment(html)
    assert re.findall(r"<script[^>]*>", html) == OWN_SCRIPTS


def test_code_a_job_sends_is_shown_not_run_nor_hidden(web):
    world: ControlWorld = web.world
    code = (
        f"print('ok')  # {SCRIPT}\n"
        "access = 'user'\x1b[2K\x1b[1A  # erases the line above on a terminal\n"
        "if access != 'none\u202e \u2066# admin only\u2069 \u2066':\n"
        "    x = 1\u200b\n"
        "# \x9b31m a C1 CSI\n"
    )
    job = world.submit(bundle_data=_tar({"train.py": code, f"a{SCRIPT}.md": "x\n"}))
    html = web.visitor("olga").get(f"/ui/jobs/{job.id}/review").text
    _clean(html)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    for shown in ("\\x1b[2K", "\\u202e", "\\u200b", "\\x9b"):
        assert shown in html, shown


def test_outputs_log_and_metrics_names_are_escaped_on_the_output_review(web):
    name = f"r\x1b[2J{SCRIPT}\u202e.csv"
    done = web.succeeded(
        {name: f"col{SCRIPT}\x1b,b\n1\u202e,2\n".encode(), "notes.txt": b"\x1b[31mred\n"},
        log=f"line\x1b[1A{SCRIPT}\n".encode(),
        metrics={f"k\x1b[2J{SCRIPT}\u202e": 0.5},
    )
    owner = web.visitor("olga")
    first = owner.get(f"/ui/jobs/{done.id}/outputs").text
    _clean(first)  # the names, before the data host uploaded anything
    assert "r\\x1b[2J&lt;script&gt;" in first
    assert "<td>k\\x1b[2J&lt;script&gt;alert(1)&lt;/script&gt;\\u202e</td>" in first
    # The part the page fetches again once the host uploaded the files and the log; the
    # whole page then shows the same.
    again = (f"/ui/jobs/{done.id}/outputs/files", f"/ui/jobs/{done.id}/outputs")
    for html in (owner.get(path).text for path in again):
        _clean_fragment(html)
        assert "r\\x1b[2J&lt;script&gt;" in html
        assert "\\x1b[31mred" in html
        assert "line\\x1b[1A" in html
        assert "<td>col&lt;script&gt;alert(1)&lt;/script&gt;\\x1b</td>" in html


def test_a_dry_runs_names_and_log_are_escaped_in_the_queue_and_the_review(web):
    world: ControlWorld = web.world
    job = world.submit()
    world.service.record_dryrun(
        DryRun(
            job_id=job.id,
            ok=False,
            reason=f"exited with code 1 {SCRIPT}",
            exit_code=1,
            produced=[f"p\x1b[2J{SCRIPT}"],
            ignored=["i\u202e.txt"],
            log_tail=f"Traceback\x1b[1A {SCRIPT}\n",
            worker="w1",
            time=1.0,
        )
    )
    owner = web.visitor("olga")
    queue = owner.get("/ui/queue").text
    _clean(queue)
    assert "FAILED" in queue
    review = owner.get(f"/ui/jobs/{job.id}/review").text
    _clean(review)
    assert "p\\x1b[2J&lt;script&gt;" in review
    assert "i\\u202e.txt" in review
    assert "Traceback\\x1b[1A &lt;script&gt;" in review
    # The researcher sees her job's dry run on her job page, escaped the same way.
    _clean(web.visitor("rita").get(f"/ui/jobs/{job.id}").text)
