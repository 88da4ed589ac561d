"""The output collector: the only way bytes leave a job's ``/outputs``.

The collector runs on the host, as root, over a folder the job's code wrote. It trusts nothing in
it:

1. It walks the folder through directory file descriptors (``openat``-style), opening every
   component with ``O_NOFOLLOW``, so no symlink anywhere in a path is ever followed.
2. Only declared names or globs are collected (``metrics.json`` always); everything else is
   listed as ignored. A declared name that is a symlink, a folder, a fifo, a device, a socket or a
   file with more than one name (a hard link) fails the job, and so does a symlinked folder on the
   way to a declared name.
3. A file is opened with ``O_NOFOLLOW | O_NONBLOCK`` (a fifo cannot block the collector) and
   checked with ``fstat`` after opening, so what is read is what was checked.
4. Per-file, total and file-count caps hold; each file is hashed while it is copied into the
   artifact store, staged, and committed only when every file passed. A rejected job leaves
   nothing of its own in the store.
5. ``metrics.json`` must be a flat JSON object of finite numbers (``metrics.parse_metrics``).

Every failure raises ``OutputRejected`` whose message is the job's reason, for example
``output rejected: model.pkl is a symlink``.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from runner.artifacts import ArtifactStore, Staged
from runner.errors import ArtifactTooLarge, OutputRejected
from runner.host.sandbox.interface import OutputFile
from runner.host.sandbox.metrics import MAX_METRICS_BYTES, METRICS_FILE, parse_metrics

_OPEN_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_OPEN_DIR = os.O_RDONLY | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC
_GLOB_CHARS = frozenset("*?[")
MAX_IGNORED_LISTED = 1000


@dataclass(frozen=True)
class OutputPolicy:
    """What may leave: declared names or globs (relative to /outputs) and the caps.

    ``metrics.json`` is collected whether declared or not. Literal names (no ``*?[``) are
    required: one that was not written fails the job. Globs may match nothing.
    """

    patterns: tuple[str, ...]
    max_files: int
    max_file_bytes: int
    max_total_bytes: int
    max_entries: int = 10_000
    max_depth: int = 32
    max_metrics: int = 100


@dataclass(frozen=True)
class Collected:
    """What the collector kept: outputs sorted by name, parsed metrics, ignored names."""

    outputs: tuple[OutputFile, ...]
    metrics: dict[str, float] | None
    ignored: tuple[str, ...] = field(default=())


def _reject(why: str) -> OutputRejected:
    return OutputRejected(f"output rejected: {why}")


def _match(parts: Sequence[str], pattern: Sequence[str]) -> bool:
    """Whether path ``parts`` matches glob ``pattern`` (``*`` stays in one folder, ``**`` not)."""
    if not pattern:
        return not parts
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_match(parts[i:], rest) for i in range(len(parts) + 1))
    return bool(parts) and fnmatchcase(parts[0], head) and _match(parts[1:], rest)


def _leads_to(parts: Sequence[str], pattern: Sequence[str]) -> bool:
    """Whether a folder at ``parts`` could hold something matching ``pattern``."""
    for i, part in enumerate(parts):
        if i >= len(pattern):
            return False
        if pattern[i] == "**":
            return True
        if not fnmatchcase(part, pattern[i]):
            return False
    return len(pattern) > len(parts)


def _plain_name(rel: str) -> bool:
    """Printable UTF-8 (names go into the ledger and onto people's screens)."""
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes arrive as lone surrogates
        return False
    return rel.isprintable()


SHOWN_CHARS = 80


def _shown(rel: str) -> str:
    """A name safe to show in a reason, whatever bytes the job used: escaped, at most
    ``SHOWN_CHARS`` characters (the job chose it, and it may be as long as 33 x 255 bytes)."""
    text = rel if _plain_name(rel) else ascii(rel.encode("utf-8", "surrogateescape"))[2:-1]
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISLNK, "a symlink"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a fifo"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "not a regular file"


class _Walk:
    """One collection: walks the tree, stages matches, then commits or discards them all."""

    def __init__(self, policy: OutputPolicy, store: ArtifactStore) -> None:
        self.policy = policy
        self.store = store
        declared = list(policy.patterns)
        self.required = {p for p in declared if not _GLOB_CHARS & set(p)}
        if METRICS_FILE not in declared:
            declared.append(METRICS_FILE)
        self.patterns = [p.split("/") for p in declared]
        self.staged: list[tuple[str, Staged]] = []
        self.ignored: list[str] = []
        self.metrics: dict[str, float] | None = None
        self.total = 0
        self.entries = 0

    def _matches(self, parts: list[str]) -> bool:
        return any(_match(parts, p) for p in self.patterns)

    def _entries(self, dir_fd: int) -> Iterator[str]:
        with os.scandir(dir_fd) as it:
            names = sorted(entry.name for entry in it)
        for name in names:
            self.entries += 1
            if self.entries > self.policy.max_entries:
                raise _reject(
                    f"/outputs holds more than {self.policy.max_entries} files and folders"
                )
            yield name

    def walk(self, dir_fd: int, prefix: list[str]) -> None:
        if len(prefix) > self.policy.max_depth:
            raise _reject(
                f"{_shown('/'.join(prefix))} is nested deeper than {self.policy.max_depth}"
            )
        for name in self._entries(dir_fd):
            parts = [*prefix, name]
            rel = "/".join(parts)
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            wanted = self._matches(parts)
            if stat.S_ISDIR(st.st_mode):
                if wanted:
                    raise _reject(
                        f"{_shown(rel)} is a folder; declare the files in it, like {_shown(rel)}/*"
                    )
                sub = os.open(name, _OPEN_DIR, dir_fd=dir_fd)
                try:
                    self.walk(sub, parts)
                finally:
                    os.close(sub)
            elif stat.S_ISLNK(st.st_mode) and (
                wanted or any(_leads_to(parts, p) for p in self.patterns)
            ):
                raise _reject(f"{_shown(rel)} is a symlink; only regular files are collected")
            elif wanted:
                if not _plain_name(rel):
                    raise _reject(
                        f"{_shown(rel)} has a name that is not printable UTF-8 text; rename it"
                    )
                self.take(dir_fd, name, rel)
            elif len(self.ignored) < MAX_IGNORED_LISTED:
                self.ignored.append(_shown(rel))

    def take(self, dir_fd: int, name: str, rel: str) -> None:
        try:
            fd = os.open(name, _OPEN_FILE, dir_fd=dir_fd)
        except OSError as exc:
            raise _reject(f"{_shown(rel)} cannot be opened ({exc.strerror})") from exc
        with os.fdopen(fd, "rb", buffering=0) as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise _reject(
                    f"{_shown(rel)} is {_kind(st.st_mode)}; only regular files are collected"
                )
            if st.st_nlink > 1:
                raise _reject(
                    f"{_shown(rel)} is a hard link (the file has {st.st_nlink} names); "
                    "only files with a single name are collected"
                )
            if len(self.staged) >= self.policy.max_files:
                raise _reject(f"more than {self.policy.max_files} output files")
            if st.st_size > self.policy.max_file_bytes:
                raise _reject(
                    f"{_shown(rel)} is {st.st_size} bytes, over the per-file limit of "
                    f"{self.policy.max_file_bytes} bytes"
                )
            room = self.policy.max_total_bytes - self.total
            if st.st_size > room:
                raise _reject(
                    f"the outputs together exceed their limit of {self.policy.max_total_bytes} "
                    f"bytes (at {_shown(rel)})"
                )
            if rel == METRICS_FILE:
                staged = self._take_metrics(f, min(room, MAX_METRICS_BYTES))
            else:
                staged = self._stage(f, rel, min(room, self.policy.max_file_bytes))
            self.staged.append((rel, staged))
            if staged.size != st.st_size:
                raise _reject(f"{_shown(rel)} changed while it was being collected")
            self.total += staged.size

    def _stage(self, f: io.RawIOBase, rel: str, cap: int) -> Staged:
        try:
            return self.store.stage(f, cap)  # type: ignore[arg-type]  # raw files read bytes
        except ArtifactTooLarge as exc:
            raise _reject(
                f"{_shown(rel)} grew past its size limit while it was being collected"
            ) from exc

    def _take_metrics(self, f: io.RawIOBase, cap: int) -> Staged:
        data = f.read(cap + 1) or b""
        if len(data) > cap:
            raise _reject(f"{METRICS_FILE} is larger than {cap} bytes")
        try:
            self.metrics = parse_metrics(data, self.policy.max_metrics)
        except ValueError as exc:
            raise _reject(f"{METRICS_FILE} {exc}") from exc
        return self._stage(io.BytesIO(data), METRICS_FILE, cap)  # type: ignore[arg-type]

    def finish(self) -> Collected:
        found = {rel for rel, _ in self.staged}
        missing = sorted(self.required - found)
        if missing:
            raise _reject(f"{_shown(missing[0])} was declared but not written")
        outputs = []
        for rel, staged in self.staged:
            staged.commit()
            outputs.append(OutputFile(rel, staged.digest, staged.size))
        return Collected(tuple(sorted(outputs)), self.metrics, tuple(self.ignored))

    def discard(self) -> None:
        for _, staged in self.staged:
            staged.discard()


def collect_outputs(root: Path, policy: OutputPolicy, store: ArtifactStore) -> Collected:
    """Collect the declared outputs under ``root`` into ``store``, or raise OutputRejected.

    Contract: never follows a link; never blocks on a fifo; commits to ``store`` only when every
    declared output passed (on any error nothing of this call is left in the store); calling it
    twice over the same folder gives the same result.
    """
    walk = _Walk(policy, store)
    root_fd = os.open(root, _OPEN_DIR)
    try:
        walk.walk(root_fd, [])
        return walk.finish()
    except OSError as exc:  # the folder changed under us or cannot be read: the job fails
        walk.discard()
        raise _reject(f"/outputs could not be read ({exc.strerror or exc})") from exc
    except BaseException:
        walk.discard()
        raise
    finally:
        os.close(root_fd)
