"""Running a dataset's automatic output checks on the data host, over the outputs it collected.

The checks themselves are ``jobs.output_checks``; this module gives them facts the host
establishes itself, never what the job said: each output's size and line count are read from
the host's own copy in its artifact store (collected from ``/outputs`` by
``runner.host.sandbox.collector``, content-addressed by the digest the host computed). The
results travel inside the outcome the host signs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from jobs.models import OutputFile
from jobs.output_checks import CheckResult, OutputChecks, OutputFacts, counts_rows, run_checks
from runner.artifacts import ArtifactStore

_CHUNK = 1024 * 1024


def count_lines(store: ArtifactStore, digest: str) -> int:
    """Lines in the stored file ``digest``: newlines, plus one for a last line without one."""
    lines = 0
    last = b"\n"
    with store.open(digest) as handle:
        while chunk := handle.read(_CHUNK):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (last != b"\n")


def facts_of(store: ArtifactStore, outputs: Sequence[OutputFile]) -> list[OutputFacts]:
    """Each output's size and, for a text or tabular file, line count, from the stored copy."""
    return [
        OutputFacts(
            name=o.name,
            bytes=store.path(o.sha256).stat().st_size,
            rows=count_lines(store, o.sha256) if counts_rows(o.name) else None,
        )
        for o in outputs
    ]


def check_outputs(
    store: ArtifactStore,
    outputs: Sequence[OutputFile],
    metrics: Mapping[str, float],
    checks: OutputChecks,
) -> list[CheckResult]:
    """The dataset's checks on a succeeded run's stored ``outputs`` and parsed ``metrics``."""
    return run_checks(checks, facts_of(store, outputs), metrics)
