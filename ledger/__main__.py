"""Command line: ``python -m ledger verify DB`` and ``python -m ledger receipt FILE --key KEY``.

Each prints exactly one JSON document on stdout; explanations go to stderr. Exit codes: 0 the
check passed, 1 it failed, 2 bad usage or input, 3 a file is missing, 4 not allowed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from ledger.errors import LedgerError
from ledger.keys import load_public_key
from ledger.kinds import ExitCode, exit_code_for
from ledger.receipt import verify_receipt
from ledger.verify import verify_log


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ledger", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    verify = commands.add_parser("verify", help="verify a whole ledger database file")
    verify.add_argument("db", type=Path, help="the SQLite file (a copy works)")
    verify.add_argument("--key", type=Path, help="the log's public key file you trust")
    verify.add_argument(
        "--checkpoint",
        type=Path,
        action="append",
        default=[],
        help="a signed checkpoint you kept earlier; the log must still match it (repeatable)",
    )
    receipt = commands.add_parser("receipt", help="verify a c2d-receipt/1 or /2 file offline")
    receipt.add_argument("file", type=Path)
    receipt.add_argument("--key", type=Path, required=True, help="the log's public key file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the process exit code."""
    args = _parser().parse_args(argv)
    try:
        key = load_public_key(args.key) if args.key else None
        if args.command == "verify":
            kept = [path.read_text() for path in args.checkpoint]
            report = verify_log(args.db, key, kept=kept)
            print(report.model_dump_json())
            if not report.ok:
                print(f"ledger verification failed: {report.detail}", file=sys.stderr)
            return ExitCode.OK if report.ok else ExitCode.FAILED
        assert key is not None  # argparse requires --key for receipts
        check = verify_receipt(json.loads(args.file.read_text()), key)
        summary = {
            "ok": True,
            "subject": check.subject,
            "origin": check.origin,
            "size": check.size,
            "root": check.root,
            "entries": [{"seq": e.seq, "type": e.type, "time": e.time} for e in check.entries],
        }
        print(json.dumps(summary))
        return ExitCode.OK
    except LedgerError as exc:
        return _fail(str(exc), exit_code_for(exc))
    except json.JSONDecodeError as exc:
        return _fail(f"{args.file} is not JSON: {exc}", ExitCode.USAGE)
    except FileNotFoundError as exc:
        return _fail(f"{exc.filename} does not exist; check the path", ExitCode.NOT_FOUND)


def _fail(detail: str, code: int) -> int:
    print(json.dumps({"ok": False, "detail": detail}))
    print(f"error: {detail}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
