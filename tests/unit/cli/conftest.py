"""Fixtures for the CLI and client unit tests: a real ledger in a temp folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_ledger_fixture import SmallLog

from jobs.digests import outputs_digest
from ledger import Ledger

JOB = "job-1"
OUTPUTS = [
    {"name": "model.skops", "sha256": "sha256:" + "a" * 64, "bytes": 10},
    {"name": "metrics.json", "sha256": "sha256:" + "b" * 64, "bytes": 20},
]


@pytest.fixture
def small_log(tmp_path: Path) -> Iterator[SmallLog]:
    origin = "c2d.test/ledger"
    ledger = Ledger(tmp_path / "c2d.db", tmp_path / "ledger.key", origin)
    notes = []
    ledger.append("job.submitted", "rita", JOB, {"code_digest": "sha256:" + "c" * 64})
    ledger.append("job.submitted", "sam", "job-2", {"code_digest": "sha256:" + "d" * 64})
    notes.append(ledger.checkpoint())
    ledger.append("job.approved", "olga", JOB, {"note": "fine"})
    body = {"outputs": len(OUTPUTS), "outputs_digest": outputs_digest(OUTPUTS)}
    ledger.append("job.finished", "worker", JOB, body)
    notes.append(ledger.checkpoint())
    ledger.append("job.released", "olga", JOB, {})
    notes.append(ledger.checkpoint())
    entries = [e.canonical_bytes() for e in ledger.entries()]
    yield SmallLog(ledger, entries, notes, ledger.public_key(), origin)
    ledger.close()
