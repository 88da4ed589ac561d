"""Consistency for a reader who keeps a checkpoint: today's log still extends the one seen then.

A signed checkpoint commits the operator to the first N entries of the log. Whoever keeps one
(a file of `c2d ledger verify --since`, or the one `c2d fetch` keeps per server) can later ask
the log for an RFC 9162 consistency proof from N to the log's current size and check it
offline against the two signed roots: the proof exists only if the first N entries are
unchanged, so a history the operator rewrote, shortened or forked shows even to someone who
holds nothing but the old checkpoint and the log's public key.

``check_since`` makes that check over the API; ``KeptCheckpoints`` is where ``fetch_verified``
keeps the last checkpoint it saw of each server, one file per server and log, written
atomically with mode 0600 beside the client's config. A kept file is itself a checkpoint note,
so `c2d ledger verify --since FILE` reads it as it is.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ledger.checkpoint import Checkpoint, open_checkpoint, parse_checkpoint_text, parse_note
from ledger.errors import LedgerError, VerificationError
from ledger.merkle import verify_consistency
from runner.client.api import Client
from runner.errors import ApiError, ClientConfigError, IntegrityError, MissingFile

MAX_NOTE_BYTES = 64 * 1024  # a checkpoint is a few hundred bytes; anything huge is not one
KEPT_FOLDER = "checkpoints"


@dataclass(frozen=True)
class Consistency:
    """Whether the log at ``size`` extends the checkpoint kept at ``kept_size``, and why.

    ``checkpoint`` is the log's signed note at ``size`` (what to keep next); ``detail`` says
    in words what was proven, or what failed and what it means.
    """

    ok: bool
    origin: str
    kept_size: int
    kept_root: str
    size: int
    root: str | None
    detail: str
    checkpoint: str | None

    def document(self) -> dict[str, Any]:
        """The facts as one JSON-ready document (``--json``)."""
        return asdict(self)


def read_note(path: Path) -> str:
    """The checkpoint note in ``path``, checked for shape only (its signature comes later).

    A missing file is ``MissingFile`` (exit 3); one that cannot be read, or holds no
    checkpoint, is ``ClientConfigError`` (exit 2). Neither changes anything.
    """
    try:
        with path.open("rb") as f:
            data = f.read(MAX_NOTE_BYTES + 1)
    except FileNotFoundError as exc:
        raise MissingFile(
            f"there is no checkpoint file {path}; pass a checkpoint you kept (`c2d fetch` keeps "
            f"one per server in {KEPT_FOLDER}/ beside the client config)"
        ) from exc
    except OSError as exc:
        raise ClientConfigError(f"cannot read the checkpoint file {path}: {exc}") from exc
    try:
        if len(data) > MAX_NOTE_BYTES:
            raise ValueError(f"it is larger than {MAX_NOTE_BYTES} bytes")
        note = data.decode("utf-8")
        parse_checkpoint_text(parse_note(note)[0])
    except (ValueError, LedgerError) as exc:
        raise ClientConfigError(
            f"{path} is not a signed checkpoint ({exc}); pass the file as it was saved "
            "(origin, size and root lines, a blank line, then the signature)"
        ) from exc
    return note


def open_kept(note: str, public_key: bytes, origin: str | None, where: str) -> Checkpoint:
    """The kept checkpoint, once its signature verifies with the log's key.

    A kept checkpoint of another log, or one whose signature fails, proves nothing about
    this log: ``ClientConfigError`` (exit 2) naming ``where`` it came from, nothing checked.
    """
    try:
        return open_checkpoint(note, public_key, origin)
    except LedgerError as exc:
        raise ClientConfigError(
            f"the checkpoint in {where} does not verify against this log's key, so it proves "
            f"nothing here: {exc}. Pass a checkpoint this log signed (nothing was checked)"
        ) from exc


def _failure(old: Checkpoint, latest: Checkpoint | None, note: str | None, why: str) -> Consistency:
    return Consistency(
        ok=False,
        origin=old.origin,
        kept_size=old.size,
        kept_root=old.root.hex(),
        size=latest.size if latest else 0,
        root=latest.root.hex() if latest else None,
        detail=why,
        checkpoint=note,
    )


def check_since(
    client: Client,
    kept: str,
    public_key: bytes,
    *,
    origin: str | None = None,
    current: str | None = None,
    where: str = "the kept checkpoint",
) -> Consistency:
    """Check that the server's log extends the ``kept`` checkpoint note.

    Steps: (1) open the kept note with ``public_key`` (and ``origin``, when given), else
    ``ClientConfigError``; (2) take the log's signed checkpoint (``current``, or the one the
    server signs now) and open it with the same key and the kept origin; (3) the log must not
    be smaller than the kept one; (4) ask for the consistency proof from the kept size to the
    current size and (5) verify it offline against both signed roots. Steps 2-5 report a
    failure in the result (``ok`` false) rather than raising: they are the verdict.
    """
    old = open_kept(kept, public_key, origin, where)  # 1
    note = current if current is not None else client.checkpoint()  # 2
    try:
        latest = open_checkpoint(note, public_key, old.origin)
    except LedgerError as exc:
        why = f"the server's current checkpoint does not verify against the log's key: {exc}"
        return _failure(old, None, note, why)
    if old.size == 0:
        return Consistency(
            ok=True,
            origin=old.origin,
            kept_size=0,
            kept_root=old.root.hex(),
            size=latest.size,
            root=latest.root.hex(),
            detail=f"the checkpoint you kept is of the empty log {old.origin}: every log "
            "extends it, so it proves nothing yet; keep a newer one",
            checkpoint=note,
        )
    if latest.size < old.size:  # 3
        return _failure(
            old,
            latest,
            note,
            f"the log shrank: it holds {latest.size} entries, but you kept a checkpoint the "
            f"operator signed at {old.size}; entries {latest.size}..{old.size - 1} were removed "
            "from a history the operator had committed to",
        )
    try:
        proof = [] if latest.size == old.size else client.consistency_proof(old.size, latest.size)
        verify_consistency(old.size, latest.size, old.root, latest.root, proof)  # 4, 5
    except (VerificationError, ApiError) as exc:
        return _failure(
            old,
            latest,
            note,
            f"the log at size {latest.size} does not extend the checkpoint you kept at size "
            f"{old.size}: at least one of entries 0..{old.size - 1} is not what the operator "
            f"signed then, so the log's history was rewritten or forked ({exc})",
        )
    grown = latest.size - old.size
    return Consistency(
        ok=True,
        origin=old.origin,
        kept_size=old.size,
        kept_root=old.root.hex(),
        size=latest.size,
        root=latest.root.hex(),
        detail=f"the log {old.origin} at size {latest.size} extends the checkpoint you kept at "
        f"size {old.size}: its first {old.size} entries are unchanged and {grown} were added "
        "since (RFC 9162 consistency proof, both checkpoints signed by the log's key)",
        checkpoint=note,
    )


class KeptCheckpoints:
    """The last checkpoint seen of each server's log, one note file per (URL, origin).

    The folder is ``checkpoints/`` beside the client config (mode 0700); each file is written
    whole or not at all, mode 0600, so a crash never leaves half a checkpoint to trip on.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @classmethod
    def beside(cls, config_file: Path) -> KeptCheckpoints:
        """The store beside a client config file (``runner.client.config.config_path``)."""
        return cls(config_file.parent / KEPT_FOLDER)

    def path(self, url: str, origin: str) -> Path:
        """The file for ``origin``'s log served at ``url``: a readable host part and a digest
        of both, so two servers or two logs never share a file."""
        host = re.sub(r"[^A-Za-z0-9.-]+", "_", urlsplit(url).netloc or "server")[:64]
        digest = hashlib.sha256(f"{url.rstrip('/')}\n{origin}".encode()).hexdigest()[:16]
        return self.folder / f"{host}-{digest}.checkpoint"

    def load(self, url: str, origin: str) -> str | None:
        """The note kept for this server and log, or None before the first fetch."""
        path = self.path(url, origin)
        if not path.exists():
            return None
        return read_note(path)

    def save(self, url: str, origin: str, note: str) -> Path:
        """Keep ``note`` for this server and log (atomically, mode 0600); its path."""
        path = self.path(url, origin)
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".checkpoint-", dir=self.folder)  # created 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(note)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path


def advance_kept(
    client: Client, store: KeptCheckpoints, public_key: bytes, origin: str, seen: str
) -> Consistency | None:
    """What ``fetch_verified`` does with the checkpoint ``seen`` (its receipt's): check it
    extends the one kept for this server, then keep it instead.

    None on the first fetch from a server (nothing kept yet: ``seen`` is kept). A kept
    checkpoint the new one does not extend raises ``IntegrityError`` and the kept one stays,
    so the next fetch refuses too.
    """
    path = store.path(client.url, origin)
    try:
        kept = store.load(client.url, origin)
        result = None
        if kept is not None:
            result = check_since(
                client, kept, public_key, origin=origin, current=seen, where=str(path)
            )
    except ClientConfigError as exc:
        raise ClientConfigError(
            f"{exc}. Nothing was saved. That file is the checkpoint c2d kept of this server; "
            f"if the operator changed the log's key and you trust the new one, remove {path} "
            "and fetch again"
        ) from exc
    if result is not None and not result.ok:
        raise IntegrityError(
            f"{result.detail}. Nothing was saved, and the checkpoint you kept stays in {path} "
            "as evidence: tell the operator, and do not trust this server's results until they "
            "explain"
        )
    store.save(client.url, origin, seen)
    return result
