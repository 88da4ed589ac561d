"""Datasets on their data host: registered there, hashed there, re-hashed there before each run.

``attest_dataset`` is what ``c2d dataset add NAME PATH`` does on the data host:

1. the folder's real path must lie inside one of this host's dataset roots, outside its state
   folder (``jobs.dataset_roots``), and must not be, lie inside or contain a folder another
   owner registered on this host;
2. every file is hashed (unchanged ones come from the registry's cache) and the tables are
   profiled (``jobs.schemas``);
3. the host signs a ``c2d.host.dataset/1`` statement: its name, the dataset's name and owner,
   digest, file count and size, and the digest of the profile.

The caller sends the statement, its signature, the profile and the owner's policy to the
control plane (with the owner's token); only when the control plane has recorded it does
``keep`` put the folder in the host's registry. The path never leaves the host.

``current_digest`` re-hashes a registered dataset (changed files only) for the pre-run check.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs.attestations import dataset_statement
from jobs.dataset_roots import DatasetRoots, overlaps
from jobs.datasets import CachedHash, Scan, readable_hint, scan
from jobs.errors import DatasetError, InvalidRequest, NotAllowed, NotFound
from jobs.models import DatasetPolicy
from jobs.schema_records import ProfileRecord
from jobs.schemas import profile_scanned, rescanner
from runner.host.identity import HostIdentity
from runner.host.registry import LocalDataset, Registry
from runner.settings import Settings


@dataclass(frozen=True)
class Attested:
    """A dataset this host hashed and profiled, and what it signed about it."""

    local: LocalDataset
    cache: dict[str, CachedHash]
    profile: ProfileRecord
    statement: dict[str, Any]
    signature: str

    def wire(self) -> dict[str, Any]:
        """What the control plane is sent: the statement, its signature, the profile."""
        return {
            "statement": self.statement,
            "signature": self.signature,
            "profile": self.profile.model_dump(mode="json", exclude_none=True),
        }


def state_folder(settings: Settings) -> Path:
    """The state folder no dataset may overlap: the host's own, or, for a host that lives
    under a control plane's ``hosts/`` on one machine (`c2d up`'s ``local``), the control
    plane's, which holds it (its database, key and released artifacts)."""
    home = settings.home
    if home.parent.name == "hosts" and (home.parent.parent / "c2d.db").exists():
        return home.parent.parent
    return home


def roots_of(settings: Settings) -> DatasetRoots:
    """This host's dataset roots (``C2D_DATASET_ROOTS``), its state folder excluded."""
    return DatasetRoots.of(settings.dataset_root_paths, state_folder(settings))


def _check_not_taken(registry: Registry, folder: Path, name: str, owner: str, shown: str) -> None:
    for other in registry.list_datasets():
        if other.name == name or other.owner == owner:
            continue
        stored = Path(other.path)
        try:
            now = stored.resolve()
        except (OSError, RuntimeError):
            now = stored
        if overlaps(folder, stored) or overlaps(folder, now):
            raise NotAllowed(
                f"{shown} is, lies inside or contains a folder that another owner has "
                "registered as a dataset; register a folder that holds only your own data"
            )


def attest_dataset(
    settings: Settings,
    registry: Registry,
    identity: HostIdentity,
    name: str,
    path: Path | str,
    policy: DatasetPolicy,
    *,
    allow_unreadable: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Attested:
    """Hash, profile and sign dataset ``name`` at ``path`` on this host (see the module doc).

    Who may register or replace the name is the control plane's to decide, when it is sent.
    Raises ``NotAllowed`` (outside the roots, another owner's folder),
    ``InvalidRequest`` (relative path), ``DatasetError`` (missing, empty, a link or device
    inside, unreadable files).
    """
    folder = roots_of(settings).check(path)
    _check_not_taken(registry, folder, name, policy.owner, str(path))
    root = str(folder)
    result: Scan = scan(folder, registry.file_cache(root), progress=progress)
    if not result.entries:
        raise DatasetError(f"{root} holds no files; pass the folder with the data", path=root)
    if result.unreadable and not allow_unreadable:
        raise DatasetError(readable_hint(result), path=result.unreadable[0])
    result, profile = profile_scanned(
        result, policy, max_rows=settings.profile_max_rows, rescan=rescanner(Path(root))
    )
    if roots_of(settings).check(result.root) != folder:
        raise DatasetError(f"{path} changed (a link replaced?) while c2d read it", path=str(path))
    local = LocalDataset(
        name, result.root, policy.owner, result.digest, result.files, result.bytes, time.time()
    )
    statement = dataset_statement(
        identity.name, name, policy.owner, result.digest, result.files, result.bytes, profile
    )
    return Attested(local, result.cache, profile, statement, identity.sign(statement))


def keep(registry: Registry, attested: Attested) -> None:
    """Put an attested dataset in the registry (once the control plane recorded it)."""
    registry.put_dataset(attested.local, attested.cache, attested.profile)


def current_digest(settings: Settings, registry: Registry, name: str) -> str:
    """Re-hash dataset ``name`` where it lives (changed files only); its digest now.

    The folder must still be registered here, inside this host's roots, and resolve to where
    it was. Raises ``NotFound`` or ``DatasetError`` (whose message names no host path: it
    reaches the researcher and the ledger).
    """
    dataset = registry.get_dataset(name)
    if dataset is None:
        raise NotFound(
            f"dataset {name!r} is not registered on this data host; its owner registers it "
            f"here (`c2d dataset add {name} PATH`)"
        )
    try:
        still = roots_of(settings).check(dataset.path) == Path(dataset.path)
    except (NotAllowed, InvalidRequest):
        still = False
    if not still:
        raise DatasetError(
            f"dataset {name!r} is no longer inside this host's dataset roots, or its folder now "
            f"resolves elsewhere; its owner registers it again under a root "
            f"(`c2d dataset add {name} PATH`)",
            path=dataset.path,
        )
    result = scan(Path(dataset.path), registry.file_cache(dataset.path))
    registry.save_file_cache(result.root, result.cache)
    return result.digest
