"""Properties of the RFC 9162 helpers against the RFC's recursive definitions.

The reference functions below are written straight from RFC 9162 sections 2.1.1, 2.1.3.1 and
2.1.4.1 with hashlib, independently of ledger.merkle.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import merkle
from ledger.errors import VerificationError


def mth(data: list[bytes]) -> bytes:
    n = len(data)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + data[0]).digest()
    k = 1 << ((n - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + mth(data[:k]) + mth(data[k:])).digest()


def path(m: int, data: list[bytes]) -> list[bytes]:
    n = len(data)
    if n == 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return [*path(m, data[:k]), mth(data[k:])]
    return [*path(m - k, data[k:]), mth(data[:k])]


def subproof(m: int, data: list[bytes], whole: bool) -> list[bytes]:
    n = len(data)
    if m == n:
        return [] if whole else [mth(data)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*subproof(m, data[:k], whole), mth(data[k:])]
    return [*subproof(m - k, data[k:], False), mth(data[:k])]


def leaves(n: int) -> list[bytes]:
    return [b"entry %d" % i for i in range(n)]


def flip(value: bytes, bit: int) -> bytes:
    bit %= len(value) * 8
    changed = bytearray(value)
    changed[bit // 8] ^= 1 << (bit % 8)
    return bytes(changed)


sizes = st.integers(min_value=1, max_value=70)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=70))
def test_root_after_n_appends_is_the_recursive_definition(data: list[bytes]) -> None:
    frontier = merkle.Frontier()
    made = 0
    for item in data:
        made += len(frontier.append(merkle.leaf_hash(item)))
    assert frontier.root() == mth(data)
    assert merkle.root_of([merkle.leaf_hash(d) for d in data]) == mth(data)
    # O(log n) per append: n leaves complete exactly n - popcount(n) perfect subtrees.
    assert made == len(data) - len(data).bit_count()


@settings(max_examples=60, deadline=None)
@given(sizes)
def test_frontier_equals_a_rebuild_and_survives_storage(n: int) -> None:
    data = leaves(n)
    frontier = merkle.Frontier()
    for item in data:
        frontier.append(merkle.leaf_hash(item))
    expected, start = [], 0
    for bit in reversed(range(n.bit_length())):
        if n >> bit & 1:
            expected.append(mth(data[start : start + (1 << bit)]))
            start += 1 << bit
    assert frontier.hashes == expected
    again = merkle.Frontier.from_bytes(n, frontier.to_bytes())
    assert again.root() == frontier.root() == mth(data)


def test_completed_subtrees_are_named_by_level_and_index() -> None:
    frontier = merkle.Frontier()
    data = leaves(8)
    reported = [frontier.append(merkle.leaf_hash(d)) for d in data]
    assert [(lv, ix) for lv, ix, _ in reported[7]] == [(1, 3), (2, 1), (3, 0)]
    assert reported[7][1][2] == mth(data[4:8])
    assert reported[6] == []


def test_a_frontier_with_the_wrong_number_of_hashes_is_refused() -> None:
    with pytest.raises(VerificationError):
        merkle.Frontier(3, [b"\0" * 32])
    with pytest.raises(VerificationError):
        merkle.Frontier.from_bytes(1, b"\0" * 31)


@settings(max_examples=150, deadline=None)
@given(sizes, st.data())
def test_every_inclusion_proof_verifies_and_any_bit_flip_fails(n: int, draw: st.DataObject) -> None:
    data = leaves(n)
    hashes = [merkle.leaf_hash(d) for d in data]
    root = mth(data)
    index = draw.draw(st.integers(0, n - 1))
    proof = merkle.inclusion_proof(index, n, merkle.subtree_of(hashes))
    assert proof == path(index, data)
    merkle.verify_inclusion(index, n, hashes[index], proof, root)

    bit = draw.draw(st.integers(0, 255))
    with pytest.raises(VerificationError):
        merkle.verify_inclusion(index, n, flip(hashes[index], bit), proof, root)
    with pytest.raises(VerificationError):
        merkle.verify_inclusion(index, n, hashes[index], proof, flip(root, bit))
    if proof:
        which = draw.draw(st.integers(0, len(proof) - 1))
        bad = [*proof[:which], flip(proof[which], bit), *proof[which + 1 :]]
        with pytest.raises(VerificationError):
            merkle.verify_inclusion(index, n, hashes[index], bad, root)


@settings(max_examples=150, deadline=None)
@given(sizes, st.data())
def test_every_consistency_proof_verifies_and_any_bit_flip_fails(
    n: int, draw: st.DataObject
) -> None:
    data = leaves(n)
    hashes = [merkle.leaf_hash(d) for d in data]
    m = draw.draw(st.integers(1, n))
    proof = merkle.consistency_proof(m, n, merkle.subtree_of(hashes))
    assert proof == subproof(m, data, True)
    old, new = mth(data[:m]), mth(data)
    merkle.verify_consistency(m, n, old, new, proof)

    bit = draw.draw(st.integers(0, 255))
    with pytest.raises(VerificationError):
        merkle.verify_consistency(m, n, flip(old, bit), new, proof)
    with pytest.raises(VerificationError):
        merkle.verify_consistency(m, n, old, flip(new, bit), proof)
    if proof:
        which = draw.draw(st.integers(0, len(proof) - 1))
        bad = [*proof[:which], flip(proof[which], bit), *proof[which + 1 :]]
        with pytest.raises(VerificationError):
            merkle.verify_consistency(m, n, old, new, bad)


def test_every_proof_of_small_trees_verifies() -> None:
    for n in range(1, 33):
        data = leaves(n)
        hashes = [merkle.leaf_hash(d) for d in data]
        subtree = merkle.subtree_of(hashes)
        for i in range(n):
            merkle.verify_inclusion(
                i, n, hashes[i], merkle.inclusion_proof(i, n, subtree), mth(data)
            )
        for m in range(1, n + 1):
            proof = merkle.consistency_proof(m, n, subtree)
            merkle.verify_consistency(m, n, mth(data[:m]), mth(data), proof)


def test_a_failed_check_names_expected_and_computed_roots() -> None:
    hashes = [merkle.leaf_hash(d) for d in leaves(5)]
    proof = merkle.inclusion_proof(2, 5, merkle.subtree_of(hashes))
    wrong = b"\x11" * 32
    with pytest.raises(VerificationError) as caught:
        merkle.verify_inclusion(2, 5, hashes[2], proof, wrong)
    assert caught.value.expected == wrong.hex()
    assert caught.value.actual == merkle.root_of(hashes).hex()
    assert wrong.hex() in str(caught.value)


def test_leaves_and_nodes_are_domain_separated() -> None:
    left, right = merkle.leaf_hash(b"a"), merkle.leaf_hash(b"b")
    # A node must not be passable as a leaf over the same 64 bytes, nor the other way round.
    assert merkle.node_hash(left, right) != merkle.leaf_hash(left + right)
    assert merkle.leaf_hash(b"") != merkle.EMPTY_ROOT


def test_proof_requests_outside_the_tree_are_refused() -> None:
    subtree = merkle.subtree_of([merkle.leaf_hash(b"x")])
    with pytest.raises(ValueError, match="outside"):
        merkle.inclusion_proof(1, 1, subtree)
    with pytest.raises(ValueError, match="no consistency proof"):
        merkle.consistency_proof(0, 1, subtree)


def test_a_rewritten_history_has_no_consistency_proof() -> None:
    """The operator's own tree, one old entry changed (the same size or grown), or cut short:
    no proof built from it by the RFC's algorithm leads from the old root to the new one."""
    for n in range(1, 21):
        data = leaves(n)
        for m in range(1, n + 1):
            old = mth(data[:m])
            for changed in range(m):
                forged = [*data[:changed], b"rewritten", *data[changed + 1 :]]
                proof = subproof(m, forged, True)
                with pytest.raises(VerificationError):
                    merkle.verify_consistency(m, n, old, mth(forged), proof)
            if m > 1:
                with pytest.raises(VerificationError, match="smaller than the first"):
                    merkle.verify_consistency(m, m - 1, old, mth(data[: m - 1]), [])
