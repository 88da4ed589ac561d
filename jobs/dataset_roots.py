"""Where datasets may live on a data host: inside the roots its administrator set.

A dataset folder is judged by its real path (``Path.resolve``: every symlink followed, ``..``
gone), never by the path someone typed:

1. it must be absolute (a relative path would be read from the server's working folder);
2. it must lie strictly inside one of the roots. A root itself is not a dataset: it holds the
   folders of several owners, and whoever registered it first would shut every other owner out
   of it (a folder that contains another owner's dataset is refused, see below);
3. it must not be, lie inside or contain c2d's state folder (a job would read the ledger's key).

With no roots set, no folder passes: nothing can be registered until the administrator has said
where private data lives (``C2D_DATASET_ROOTS``). This fails closed on purpose: a default root
would let an owner publish whatever some other person or program put there.

``Accounts.register_dataset`` adds the rule between owners: a folder that is, lies inside or
contains a folder another owner registered is refused (``overlaps``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from jobs.errors import InvalidRequest, NotAllowed

ROOTS_SETTING = "C2D_DATASET_ROOTS"


def overlaps(a: Path, b: Path) -> bool:
    """Whether folder ``a`` is ``b``, lies inside it or contains it (both absolute, resolved)."""
    return a == b or a in b.parents or b in a.parents


def real_path(path: Path | str) -> Path:
    """The real path of ``path``: absolute, every symlink resolved, no ``..``.

    Raises ``InvalidRequest`` for a relative path or one the system cannot resolve.
    """
    given = Path(path)
    if not given.is_absolute():
        raise InvalidRequest(
            f"{path} is not an absolute path; give the dataset folder's full path on the data host"
        )
    try:
        return given.resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop, a name too long
        raise InvalidRequest(f"{path} cannot be resolved to a real folder: {exc}") from exc


@dataclass(frozen=True)
class DatasetRoots:
    """The folders datasets may be registered in (absolute), and the state folder they may
    never overlap. Built from the settings at the entry point; the default allows nothing."""

    roots: tuple[Path, ...] = ()
    state: Path | None = None

    @classmethod
    def of(cls, roots: Iterable[Path | str], state: Path | str | None) -> DatasetRoots:
        """Roots and state folder given as paths or strings."""
        return cls(tuple(Path(r) for r in roots), Path(state) if state is not None else None)

    def _real_roots(self) -> list[Path]:
        return [Path(r).resolve() for r in self.roots]

    def describe(self) -> str:
        """The roots as people read them in an error message."""
        return ", ".join(str(r) for r in self.roots) or "(none)"

    def check(self, path: Path | str) -> Path:
        """The real path of the folder ``path`` if a dataset may be registered there.

        Raises ``InvalidRequest`` (relative or unresolvable path) or ``NotAllowed`` (no roots
        set, outside every root, a root itself, or overlapping the state folder); each
        message says what to do.
        """
        folder = real_path(path)
        # The real path is not echoed: where someone else's symlink leads is not the caller's
        # business.
        shown = str(path) if str(folder) == str(path) else f"{path} (through a link or '..')"
        roots = self._real_roots()
        if not roots:
            raise NotAllowed(
                "this c2d host has no dataset roots, so no folder can be registered; its "
                f"administrator sets {ROOTS_SETTING} to the folders that hold datasets "
                "(absolute paths, comma-separated) and restarts c2d"
            )
        if folder in roots:
            raise NotAllowed(
                f"{shown} is a dataset root itself, which holds the folders of every owner; "
                "register a folder inside it"
            )
        if not any(root in folder.parents for root in roots):
            raise NotAllowed(
                f"{shown} is not inside a dataset root of this host ({self.describe()}); put "
                "the data in a folder under one of them, or ask the host's administrator to "
                f"add a root to {ROOTS_SETTING}"
            )
        if self.state is not None and overlaps(folder, Path(self.state).resolve()):
            raise NotAllowed(
                f"{shown} overlaps c2d's state folder; register a folder that holds only the data"
            )
        return folder
