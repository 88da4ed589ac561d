"""The c2d audit ledger: hash-chained, Merkle-proved, signed, verifiable offline.

This package imports nothing else of c2d.
"""
