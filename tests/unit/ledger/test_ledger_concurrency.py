"""Several processes appending to one ledger file at once."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from ledger_testkit import ORIGIN

from ledger import Ledger, verify_log

WORKERS = 4
PER_WORKER = 1000


def append_from_a_process(db: str, key: str, worker: int) -> None:
    ledger = Ledger(Path(db), Path(key), ORIGIN)
    for n in range(PER_WORKER):
        ledger.append("job.started", f"worker-{worker}", f"job-{worker}", {"n": n})
    ledger.close()


def test_four_processes_make_one_valid_chain(tmp_path: Path) -> None:
    db, key = tmp_path / "ledger.db", tmp_path / "ledger.key"
    # Real processes, started fresh; they also race to create the signing key.
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=append_from_a_process, args=(str(db), str(key), w))
        for w in range(WORKERS)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [p.exitcode for p in processes] == [0] * WORKERS

    with Ledger(db, key, ORIGIN) as ledger:
        entries = ledger.entries()
        assert [e.seq for e in entries] == list(range(WORKERS * PER_WORKER))
        for worker in range(WORKERS):
            mine = ledger.entries_for(f"job-{worker}")
            assert [e.body["n"] for e in mine] == list(range(PER_WORKER))
        ledger.checkpoint()
        report = verify_log(db, ledger.public_key())
    assert report.ok, report.detail
    assert report.entries == WORKERS * PER_WORKER
