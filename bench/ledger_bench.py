"""Ledger benchmark: each figure beside a baseline measured in the same run.

Run: .venv/bin/python -m bench.ledger_bench [--entries N] [--dir DIR]

Measures, on a fresh SQLite file in WAL mode with synchronous=FULL:
- durable appends, one per transaction, against raw SQLite inserts of the same rows (median
  of three rounds after a warm-up round);
- batched appends (append_many), against raw executemany inserts of the same rows;
- building an N-entry log with append_many (signing a checkpoint every 10% on the way);
- full verification of the N-entry log, against streaming the same rows and hashing each once;
- an inclusion proof from storage at size N, against one primary-key row lookup;
- verifying a five-entry receipt offline, against one bare Ed25519 signature check;
- verifying a ``c2d-receipt/2`` whose job carries every actor's signature (submit, approval,
  the host's outcome, release), the three key entries they rely on and the dataset's
  publication (the owner's and the host's signatures), against the same check;
- a consistency proof from storage at size N from a random earlier size, and its offline
  verification, against the same Ed25519 check; and a reader's whole check of a checkpoint
  kept at N/10 (both checkpoints' signatures opened, the proof verified), against the same.
Nothing is asserted; the table goes to stdout.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger import Ledger, merkle, verify_log, verify_receipt
from ledger.checkpoint import open_checkpoint, verify_extends
from ledger.storage import checkpoints, connect
from tests.kit.signed_log import published_job

ORIGIN = "bench.c2d.example/ledger"
STEPS = ("job.submitted", "job.approved", "job.started", "job.finished", "job.released")


def records(start: int, count: int) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """Job-shaped entries: five per job, with digests the size real ones have."""
    for n in range(start, start + count):
        job = n // len(STEPS)
        body = {
            "code_digest": "sha256:" + hashlib.sha256(b"code%d" % job).hexdigest(),
            "dataset": "patients",
            "dataset_digest": "sha256:" + hashlib.sha256(b"data").hexdigest(),
            "params_digest": "sha256:" + hashlib.sha256(b"params%d" % job).hexdigest(),
            "resources": {"cpus": 1, "memory_mb": 2048, "timeout_s": 600},
        }
        yield STEPS[n % len(STEPS)], "researcher@lab.example", f"job-{job:08d}", body


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}/s"


def per_call(fn: Callable[[], object], repeat: int) -> float:
    """Median seconds per call over ``repeat`` calls (after one warm-up call)."""
    fn()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def raw_table(path: Path) -> sqlite3.Connection:
    conn = connect(path)
    conn.execute(
        "CREATE TABLE rows (seq INTEGER PRIMARY KEY, hash BLOB, type TEXT, subject TEXT, "
        "canonical BLOB)"
    )
    conn.execute("CREATE INDEX rows_by_subject ON rows (subject, seq)")
    return conn


def timed_rounds(do: Callable[[int], None], count: int, rounds: int = 3) -> float:
    """Median seconds per round of ``count`` calls, after one untimed warm-up round.

    The warm-up lets the WAL file reach its working size: while it grows, every fsync also
    has to flush the file's new length, which is not the steady state of a running server.
    """
    offset = 0
    samples = []
    for round_ in range(rounds + 1):
        started = time.perf_counter()
        for n in range(offset, offset + count):
            do(n)
        if round_:
            samples.append(time.perf_counter() - started)
        offset += count
    return statistics.median(samples)


def bench_appends(work: Path, count: int) -> list[tuple[str, str, str, str, str]]:
    rounds = 3
    every = list(records(0, count * (rounds + 1)))
    ledger = Ledger(work / "single.db", work / "key", ORIGIN)
    single = timed_rounds(lambda n: ledger.append(*every[n]), count, rounds)
    ledger.close()
    source = sqlite3.connect(work / "single.db")
    rows = source.execute(
        "SELECT seq, hash, type, subject, canonical FROM ledger_entries ORDER BY seq"
    ).fetchall()
    source.close()

    raw = raw_table(work / "raw-single.db")

    def raw_insert(n: int) -> None:
        raw.execute("BEGIN IMMEDIATE")
        raw.execute("INSERT INTO rows VALUES (?, ?, ?, ?, ?)", rows[n])
        raw.execute("COMMIT")

    raw_single = timed_rounds(raw_insert, count, rounds)
    raw.close()

    batch, batches = 1000, 20
    ledger = Ledger(work / "batched.db", work / "key", ORIGIN)
    started = time.perf_counter()
    for b in range(batches):
        ledger.append_many(records(b * batch, batch))
    batched = time.perf_counter() - started
    ledger.close()
    source = sqlite3.connect(work / "batched.db")
    same_rows = source.execute(
        "SELECT seq, hash, type, subject, canonical FROM ledger_entries ORDER BY seq"
    ).fetchall()
    source.close()
    raw = raw_table(work / "raw-batched.db")
    started = time.perf_counter()
    for b in range(batches):
        raw.execute("BEGIN IMMEDIATE")
        raw.executemany(
            "INSERT INTO rows VALUES (?, ?, ?, ?, ?)", same_rows[b * batch : (b + 1) * batch]
        )
        raw.execute("COMMIT")
    raw_batched = time.perf_counter() - started
    raw.close()
    total = batch * batches
    return [
        (
            "append, 1 per transaction",
            rate(count, single),
            rate(count, raw_single) + " raw INSERT",
            f"{raw_single / single:.2f}",
            ">= 3,000/s",
        ),
        (
            f"append_many, {batch} per tx",
            rate(total, batched),
            rate(total, raw_batched) + " raw executemany",
            f"{raw_batched / batched:.2f}",
            "more than 1/tx",
        ),
    ]


def build_log(work: Path, size: int) -> tuple[Ledger, float]:
    ledger = Ledger(work / "big.db", work / "key", ORIGIN)
    batch = 10_000
    sign_every = max(batch, size // 10)
    started = time.perf_counter()
    done = 0
    while done < size:
        step = min(batch, size - done)
        ledger.append_many(records(done, step))
        done += step
        if done % sign_every == 0 or done == size:
            ledger.checkpoint()
    return ledger, time.perf_counter() - started


def stream_and_hash(db: Path) -> float:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    started = time.perf_counter()
    sha256 = hashlib.sha256
    for (data,) in conn.execute("SELECT canonical FROM ledger_entries ORDER BY seq"):
        sha256(data).digest()
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def bench_consistency(
    work: Path, ledger: Ledger, sig_s: float
) -> list[tuple[str, str, str, str, str]]:
    """What `c2d ledger verify --since` and `c2d fetch` cost the server and the reader."""
    size = ledger.size()
    rng = random.Random(11)
    olds = [rng.randrange(1, size) for _ in range(1000)]
    roots = {m: ledger.root(m) for m in olds[:50]}
    head = ledger.root()
    cycle = iter(olds * 2)
    proof_s = per_call(lambda: ledger.consistency_proof(next(cycle), size), 999)
    proofs = [(m, ledger.consistency_proof(m, size)) for m in roots]
    turn = iter(proofs * 5)

    def verify_one() -> None:
        m, proof = next(turn)
        merkle.verify_consistency(m, size, roots[m], head, proof)

    verify_s = per_call(verify_one, 200)
    conn = connect(work / "big.db")
    kept_size, kept = checkpoints(conn)[0]
    conn.close()
    current = ledger.checkpoint()
    key = ledger.public_key()
    kept_proof = ledger.consistency_proof(kept_size, size)
    check_s = per_call(lambda: verify_extends(kept, current, kept_proof, key, ORIGIN), 200)
    baseline = f"{sig_s * 1e3:.3f} ms one Ed25519 verify"
    return [
        (
            f"consistency proof at {size:,}",
            f"{proof_s * 1e3:.3f} ms",
            baseline,
            f"{sig_s / proof_s:.2f}",
            "<= 1 ms",
        ),
        (
            f"verify a consistency proof to {size:,}",
            f"{verify_s * 1e3:.3f} ms",
            baseline,
            f"{sig_s / verify_s:.2f}",
            "<= 1 ms",
        ),
        (
            f"check a kept checkpoint ({kept_size:,} -> {size:,})",
            f"{check_s * 1e3:.3f} ms",
            baseline,
            f"{sig_s / check_s:.2f}",
            "<= 1 ms",
        ),
    ]


def bench_signed_receipt(ledger: Ledger, sig_s: float) -> tuple[str, str, str, str, str]:
    """A fully signed job appended to the big log (real keys), its receipt verified offline,
    as `c2d fetch` gets it: the job's entries, the key entries they rely on and the dataset's
    signed publication, each with its inclusion proof; the checkpoint, and every signature
    (submit, approval, the host's outcome, release, the owner's publication and the host's
    statement on the data)."""
    world = published_job(ledger)
    receipt = ledger.receipt(world.job)
    key = ledger.public_key()
    check = verify_receipt(receipt, key)
    signed = sum(a.verdict == "signed" for a in check.actions)
    receipt_s = per_call(lambda: verify_receipt(receipt, key), 200)
    return (
        f"verify a /2 receipt, {signed} signatures",
        f"{receipt_s * 1e3:.3f} ms",
        f"{sig_s * 1e3:.3f} ms one Ed25519 verify",
        f"{sig_s / receipt_s:.2f}",
        "<= 1 ms (0.5 ms)",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000, help="size of the big log")
    parser.add_argument("--appends", type=int, default=1000, help="single appends per round")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the databases")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ledger-bench-", dir=args.dir))
    table: list[tuple[str, str, str, str, str]] = []
    try:
        table += bench_appends(work, args.appends)

        ledger, built = build_log(work, args.entries)
        size = ledger.size()
        table.append(
            (
                f"build {size:,} via append_many",
                f"{built:.1f} s",
                "-",
                "-",
                "-",
            )
        )

        report = verify_log(work / "big.db", ledger.public_key())
        assert report.ok, report.detail
        started = time.perf_counter()
        verify_log(work / "big.db", ledger.public_key())
        verified = time.perf_counter() - started
        hashed = stream_and_hash(work / "big.db")
        table.append(
            (
                f"full verify of {size:,}",
                f"{verified:.2f} s",
                f"{hashed:.2f} s stream+sha256",
                f"{hashed / verified:.2f}",
                "<= 10 s",
            )
        )

        rng = random.Random(7)
        indices = [rng.randrange(size) for _ in range(1000)]
        cycle = iter(indices * 2)
        proof_s = per_call(lambda: ledger.inclusion_proof(next(cycle), size), 999)
        conn = connect(work / "big.db")
        lookup = iter(indices * 2)
        row_s = per_call(
            lambda: conn.execute(
                "SELECT canonical FROM ledger_entries WHERE seq = ?", (next(lookup),)
            ).fetchone(),
            999,
        )
        index = indices[0]
        data = conn.execute(
            "SELECT canonical FROM ledger_entries WHERE seq = ?", (index,)
        ).fetchone()[0]
        merkle.verify_inclusion(
            index, size, merkle.leaf_hash(data), ledger.inclusion_proof(index, size), ledger.root()
        )
        conn.close()
        table.append(
            (
                f"inclusion proof at {size:,}",
                f"{proof_s * 1e3:.3f} ms",
                f"{row_s * 1e3:.3f} ms one row lookup",
                f"{row_s / proof_s:.2f}",
                "<= 1 ms",
            )
        )

        subject = f"job-{(size // 2) // len(STEPS):08d}"
        receipt = ledger.receipt(subject)
        key = ledger.public_key()
        receipt_s = per_call(lambda: verify_receipt(receipt, key), 200)
        note = receipt["checkpoint"]
        text, _, line = note.rpartition("\n\n")
        signature = base64.b64decode(line.split(" ")[-1])[4:]
        open_checkpoint(note, key)
        public = Ed25519PublicKey.from_public_bytes(key)
        sig_s = per_call(lambda: public.verify(signature, (text + "\n").encode()), 200)
        table.append(
            (
                f"verify a {len(receipt['entries'])}-entry receipt",
                f"{receipt_s * 1e3:.3f} ms",
                f"{sig_s * 1e3:.3f} ms one Ed25519 verify",
                f"{sig_s / receipt_s:.2f}",
                "<= 1 ms",
            )
        )
        table += bench_consistency(work, ledger, sig_s)
        table.append(bench_signed_receipt(ledger, sig_s))
        ledger.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    widths = [max(len(row[i]) for row in table) for i in range(5)]
    header = ("measure", "ledger", "baseline (same run)", "speed vs baseline", "goal")
    widths = [max(w, len(h)) for w, h in zip(widths, header, strict=True)]
    for row in (header, tuple("-" * w for w in widths), *table):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
