"""`c2d backup` and `c2d restore`: the control plane's state folder, copied so it can come back.

What a backup holds (``manifest``): the database (store and ledger in one file, copied with
SQLite's online backup API while the API may be running), the ledger's public key, the
artifact store (code bundles and released outputs, content-addressed) and a manifest of every
file's sha256; the ledger's private key only when asked. ``make`` writes one, ``restore``
checks one and brings it back into an empty folder, refusing anything that does not match.
"""
