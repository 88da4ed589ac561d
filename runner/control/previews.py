"""What an output holds, at a glance: its type, and the first rows or bytes of text outputs.

The data owner reads this before she releases a job's outputs (and its researcher once they
are released): ``preview`` reads at most ``READ_BYTES`` of the stored blob, never more, and
shows at most ``MAX_ROWS`` rows of a CSV or TSV file (``MAX_COLUMNS`` columns, ``MAX_CELL``
characters a cell) or ``MAX_TEXT`` characters of other text. A file is text when those bytes
decode as UTF-8 and hold no NUL; everything else is named by its magic bytes and not shown.
Nothing is parsed beyond that: no unpickling, no unzipping, no Parquet reader on a file the
job wrote. The caller has checked that its reader may see the outputs
(``Service.authorize_outputs``); every string here is the job's and is escaped where shown.

Outputs stay on the job's data host until they are needed (``runner.host.delivery``).
``gather`` reads only what is already on the control plane and says what to ask the host for:
before release only the copies the host uploaded for the owner's review (``Context.review``),
never the store of released artifacts; after release the released outputs.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import asdict, dataclass, field
from typing import Any

from jobs.models import Job, OutputFile
from jobs.states import JobState
from runner.artifacts import ArtifactStore
from runner.context import Context

READ_BYTES = 16 * 1024
MAX_ROWS = 20
MAX_COLUMNS = 50
MAX_CELL = 200
MAX_TEXT = 4096

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "zip archive"),
    (b"PAR1", "Parquet table"),
    (b"\x1f\x8b", "gzip"),
    (b"\x93NUMPY", "NumPy array"),
    (b"\x89PNG\r\n\x1a\n", "PNG image"),
    (b"\x80", "Python pickle (never load one you did not make)"),
    (b"\x89HDF", "HDF5"),
)
_TABLES = {".csv": ",", ".tsv": "\t"}
_TEXT_KINDS = {".json": "JSON", ".md": "Markdown", ".txt": "text", ".log": "text"}


@dataclass
class Preview:
    """An output's type and, for text, its beginning (``rows`` for tables, else ``text``)."""

    name: str
    sha256: str
    bytes: int
    type: str
    rows: list[list[str]] = field(default_factory=list)
    text: str | None = None
    truncated: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (one item of ``GET /v1/jobs/{id}/previews``)."""
        return asdict(self)


def _suffix(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    return "." + base.rsplit(".", 1)[-1].lower() if "." in base else ""


def _decoded(head: bytes, complete: bool) -> str | None:
    """``head`` as text, if it is UTF-8 without NUL (a cut last character is dropped)."""
    if b"\x00" in head:
        return None
    try:
        return codecs.getincrementaldecoder("utf-8")().decode(head, final=complete)
    except UnicodeDecodeError:
        return None


def _cell(value: str) -> str:
    return value if len(value) <= MAX_CELL else value[: MAX_CELL - 1] + "…"


def _rows(text: str, delimiter: str, complete: bool) -> tuple[list[list[str]], bool]:
    lines = text.splitlines(keepends=True)
    cut = not complete and bool(lines) and not lines[-1].endswith(("\n", "\r"))
    if cut:
        lines = lines[:-1]  # the last line read is only a part of one
    rows: list[list[str]] = []
    truncated = not complete
    try:
        for row in csv.reader(io.StringIO("".join(lines)), delimiter=delimiter):
            if len(rows) == MAX_ROWS:
                truncated = True
                break
            if len(row) > MAX_COLUMNS:
                row, truncated = row[:MAX_COLUMNS], True
            rows.append([_cell(c) for c in row])
    except csv.Error:
        truncated = True
    return rows, truncated


def preview(artifacts: ArtifactStore, output: OutputFile) -> Preview:
    """What ``output`` is, and its beginning if it is text (see the module docstring)."""
    with artifacts.open(output.sha256) as handle:
        head = handle.read(READ_BYTES)
    complete = len(head) >= output.bytes
    found = Preview(output.name, output.sha256, output.bytes, "binary")
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            found.type = f"{kind} (binary, not shown)"
            return found
    text = _decoded(head, complete)
    if text is None:
        found.type = "binary (not shown)"
        return found
    suffix = _suffix(output.name)
    if suffix in _TABLES:
        found.type = f"{suffix[1:].upper()} table"
        found.rows, found.truncated = _rows(text, _TABLES[suffix], complete)
        return found
    found.type = _TEXT_KINDS.get(suffix, "text")
    found.text = text[:MAX_TEXT]
    found.truncated = not complete or len(text) > MAX_TEXT
    return found


@dataclass
class Gathered:
    """What of a job's outputs is here to preview, and what is not (yet)."""

    previews: list[Preview]
    """One per output that is here, in the outcome's order."""
    missing: list[OutputFile]
    """Outputs still on the job's data host."""
    ask: str | None
    """What to ask the data host to upload for the missing ones (``review`` before release,
    ``outputs`` after), or ``None`` when it would refuse: the job ended some other way (its
    outputs refused, say), so they never leave the host."""

    @property
    def complete(self) -> bool:
        return not self.missing


def sources(ctx: Context, job: Job) -> tuple[tuple[ArtifactStore, ...], str | None]:
    """The stores a preview of ``job``'s outputs may read, and what to ask its data host for
    when an output is in none of them. The released artifacts are read only once released
    (the review copy, the same bytes by digest, serves too)."""
    if job.state is JobState.RELEASED:
        return (ctx.artifacts, ctx.review), "outputs"
    if job.state is JobState.SUCCEEDED:
        return (ctx.review,), "review"
    return (ctx.review,), None


def gather(ctx: Context, job: Job) -> Gathered:
    """A preview of each of ``job``'s outputs that is here (see ``sources``), and which are not."""
    stores, ask = sources(ctx, job)
    found = Gathered([], [], ask)
    for output in job.outcome.outputs if job.outcome else []:
        store = next((s for s in stores if s.has(output.sha256)), None)
        if store is None:
            found.missing.append(output)
        else:
            found.previews.append(preview(store, output))
    return found
