"""RFC 9162 Merkle tree hashing, proofs and proof verification.

Pure functions over hashes; nothing here touches storage. Leaves and interior nodes are hashed
with explicit domain-separation prefixes (0x00 for a leaf, 0x01 for a node) so that a leaf can
never be passed off as a node. Proof generation takes a ``subtree(lo, hi)`` callback returning
the Merkle tree hash of leaves ``[lo, hi)``; the ranges asked for are exactly those of the RFC's
recursive definitions, so a store can answer them from the perfect subtrees it keeps.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from ledger.errors import VerificationError

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()

SubtreeHash = Callable[[int, int], bytes]
"""Returns MTH(D[lo:hi]) for a half-open range of leaf indices."""


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 leaf hash: SHA-256(0x00 || data)."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node hash: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (n >= 2): where the RFC splits."""
    return 1 << ((n - 1).bit_length() - 1)


class Frontier:
    """The compact range of a tree of ``size`` leaves: one hash per set bit of ``size``.

    ``hashes`` are the roots of the perfect subtrees that make up the tree, largest (leftmost)
    first. Appending a leaf merges equal-sized subtrees, so it costs O(log n) hashes and reports
    every perfect subtree it completed, which is what a store keeps to answer proofs later.
    """

    __slots__ = ("hashes", "size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if size < 0 or len(hashes) != size.bit_count():
            raise VerificationError(
                f"a frontier of size {size} holds {size.bit_count()} hashes, not {len(hashes)}"
            )
        self.size = size
        self.hashes = list(hashes)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add one leaf hash; return the completed subtrees as ``(level, index, hash)``.

        Level 1 is a pair of leaves; ``index`` counts subtrees of that level from the left.
        """
        position = self.size
        carry = position
        level = 0
        current = leaf
        completed: list[tuple[int, int, bytes]] = []
        while carry & 1:
            current = node_hash(self.hashes.pop(), current)
            level += 1
            carry >>= 1
            completed.append((level, position >> level, current))
        self.hashes.append(current)
        self.size = position + 1
        return completed

    def root(self) -> bytes:
        """The tree head MTH(D[0:size]); the hash of the empty string for an empty tree."""
        if not self.hashes:
            return EMPTY_ROOT
        result = self.hashes[-1]
        for left in reversed(self.hashes[:-1]):
            result = node_hash(left, result)
        return result

    def to_bytes(self) -> bytes:
        """The hashes concatenated, for storage beside ``size``."""
        return b"".join(self.hashes)

    @classmethod
    def from_bytes(cls, size: int, blob: bytes) -> Frontier:
        """Inverse of :meth:`to_bytes`."""
        if len(blob) % HASH_SIZE:
            raise VerificationError(f"a stored frontier is {len(blob)} bytes, not whole hashes")
        return cls(size, [blob[i : i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE)])


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of a list of leaf hashes, computed with a frontier in O(n)."""
    frontier = Frontier()
    for leaf in leaf_hashes:
        frontier.append(leaf)
    return frontier.root()


def subtree_of(leaf_hashes: Sequence[bytes]) -> SubtreeHash:
    """A ``subtree`` callback over an in-memory list of leaf hashes."""
    return lambda lo, hi: root_of(leaf_hashes[lo:hi])


def inclusion_proof(index: int, size: int, subtree: SubtreeHash) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 9162 section 2.1.3.1, leaf side first."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    proof: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = split_point(hi - lo)
        if index < lo + k:
            proof.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            proof.append(subtree(lo, lo + k))
            lo += k
    proof.reverse()
    return proof


def consistency_proof(size1: int, size2: int, subtree: SubtreeHash) -> list[bytes]:
    """PROOF(size1, D[0:size2]) of RFC 9162 section 2.1.4.1 (0 < size1 <= size2)."""
    if not 0 < size1 <= size2:
        raise ValueError(f"no consistency proof from size {size1} to size {size2}")
    proof: list[bytes] = []
    lo, hi, m = 0, size2, size1
    whole_old_tree = True  # the RFC's flag b: is D[lo:lo+m] still the entire old tree?
    while m != hi - lo:
        k = split_point(hi - lo)
        if m <= k:
            proof.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            proof.append(subtree(lo, lo + k))
            lo += k
            m -= k
            whole_old_tree = False
    if not whole_old_tree:
        proof.append(subtree(lo, hi))
    proof.reverse()
    return proof


def _check_proof_shape(proof: Sequence[bytes]) -> None:
    for i, item in enumerate(proof):
        if not isinstance(item, bytes) or len(item) != HASH_SIZE:
            size = len(item) if isinstance(item, bytes) else type(item).__name__
            raise VerificationError(f"proof hash {i} is {size} bytes, not {HASH_SIZE}")


def _mismatch(what: str, expected: bytes, actual: bytes) -> VerificationError:
    return VerificationError(
        f"{what}: expected {expected.hex()}, computed {actual.hex()}",
        expected=expected.hex(),
        actual=actual.hex(),
    )


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """Steps 1-4 of RFC 9162 section 2.1.3.2: the root that ``proof`` leads to from ``leaf``."""
    if not 0 <= index < size:
        raise VerificationError(f"leaf index {index} is not inside a tree of size {size}")
    if len(leaf) != HASH_SIZE:
        raise VerificationError(f"the leaf hash is {len(leaf)} bytes, not {HASH_SIZE}")
    _check_proof_shape(proof)
    fn, sn = index, size - 1
    result = leaf
    sha256 = hashlib.sha256  # node_hash inlined: a receipt walks a hundred-odd of these
    for sibling in proof:
        if sn == 0:
            raise VerificationError(
                f"inclusion proof has {len(proof)} hashes, more than a tree of size {size} needs"
            )
        if fn & 1 or fn == sn:
            result = sha256(NODE_PREFIX + sibling + result).digest()
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            result = sha256(NODE_PREFIX + result + sibling).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError(
            f"inclusion proof has {len(proof)} hashes, fewer than a tree of size {size} needs"
        )
    return result


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 section 2.1.3.2; raises VerificationError naming expected and computed roots."""
    computed = root_from_inclusion_proof(index, size, leaf, proof)
    if computed != root:
        raise _mismatch(f"inclusion proof for leaf {index} of {size}", root, computed)


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 section 2.1.4.2: the tree (size2, root2) extends the tree (size1, root1).

    The RFC defines proofs for 0 < size1 < size2; equal sizes need an empty proof and equal
    roots. A first size of 0 is refused: it would prove nothing, so a caller holding an empty
    tree has nothing to check.
    """
    if size1 <= 0:
        raise VerificationError(f"a consistency proof needs a first size above 0, not {size1}")
    if size2 < size1:
        raise VerificationError(f"the second tree ({size2}) is smaller than the first ({size1})")
    if size1 == size2:
        if proof:
            raise VerificationError(f"trees of equal size {size1} need an empty proof")
        if root1 != root2:
            raise _mismatch(f"two roots of the same size {size1}", root1, root2)
        return
    if not proof:
        raise VerificationError(f"the consistency proof from {size1} to {size2} is empty")
    _check_proof_shape(proof)
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    first = second = path[0]
    for item in path[1:]:
        if sn == 0:
            raise VerificationError(
                f"consistency proof from {size1} to {size2} has more hashes than it needs"
            )
        if fn & 1 or fn == sn:
            first = node_hash(item, first)
            second = node_hash(item, second)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            second = node_hash(second, item)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError(
            f"consistency proof from {size1} to {size2} has fewer hashes than it needs"
        )
    if first != root1:
        raise _mismatch(f"old root (size {size1}) rebuilt from the proof", root1, first)
    if second != root2:
        raise _mismatch(f"new root (size {size2}) rebuilt from the proof", root2, second)
