"""The 196 RFC 9162 proof vectors (see tests/testdata/rfc9162-merkle/README.md)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from ledger.errors import VerificationError
from ledger.merkle import verify_consistency, verify_inclusion

VECTORS = Path(__file__).parents[2] / "testdata" / "rfc9162-merkle"
CASES = sorted(VECTORS.rglob("*.json"))


def _b(text: str) -> bytes:
    return base64.b64decode(text)


def _check(case: dict[str, Any]) -> None:
    proof = [_b(p) for p in case["proof"] or []]
    if "leafIdx" in case:
        verify_inclusion(
            case["leafIdx"], case["treeSize"], _b(case["leafHash"]), proof, _b(case["root"])
        )
    else:
        verify_consistency(
            case["size1"], case["size2"], _b(case["root1"]), _b(case["root2"]), proof
        )


def test_all_vectors_are_present() -> None:
    assert len(CASES) == 196
    assert "Apache-2.0" in (VECTORS / "README.md").read_text()


@pytest.mark.parametrize("path", CASES, ids=[str(p.relative_to(VECTORS)) for p in CASES])
def test_vector(path: Path) -> None:
    case = json.loads(path.read_text())
    if case["wantErr"]:
        with pytest.raises(VerificationError):
            _check(case)
    else:
        _check(case)
