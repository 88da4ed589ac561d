"""Users and tokens, and the registration of datasets with their policies."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

from jobs import access
from jobs.dataset_roots import overlaps
from jobs.datasets import readable_hint, scan
from jobs.errors import DatasetError, InvalidRequest, NotAllowed, NotFound, Unauthenticated
from jobs.fields import NAME_HELP
from jobs.models import Dataset, DatasetPolicy, Job, Role, User
from jobs.schemas import profile_scanned, rescanner
from jobs.service_core import ServiceCore, build, check_name, dataset_subject, user_subject


def token_hash(token: str) -> str:
    """How tokens are stored: the hex sha256 of the token (never the token itself)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


TOKEN_PREFIX = "c2d_"  # noqa: S105 - a prefix, not a secret


def new_token(prefix: str = TOKEN_PREFIX) -> str:
    """A new token: ``prefix`` (``c2d_`` for people) and 43 URL-safe characters (256 bits).

    The prefix says what it is (and lets secret scanners find one pasted where it should not
    be); it also means no token starts with ``-``, which a command line would read as an
    option (about one bare token in 64 did).
    """
    return prefix + secrets.token_urlsafe(32)


class Accounts(ServiceCore):
    """Users, authentication and datasets."""

    def add_user(self, name: str, role: Role | str, *, actor: str = "operator") -> tuple[User, str]:
        """Create a user; return it with its token, which is shown this once and never stored.

        Entry ``user.added`` (subject ``user:NAME``). ``InvalidRequest`` for a bad name or
        role, ``Conflict`` if the name is taken.
        """
        user = build(User, name=name, role=role, created=self._now())
        token = new_token()
        with self._store.transaction() as conn:
            self._store.add_user(user, token_hash(token))
            self._record(
                conn, "user.added", actor, user_subject(user.name), {"role": user.role.value}
            )
        return user, token

    def authenticate(self, token: str | None) -> User:
        """The user holding ``token``; ``Unauthenticated`` for a missing or unknown token."""
        if token:
            presented = token_hash(token)
            found = self._store.user_by_token_hash(presented)
            if found is not None and hmac.compare_digest(found[1], presented):
                return found[0]
        raise Unauthenticated(
            "missing or unknown token; set C2D_TOKEN (or run `c2d login URL TOKEN`) with a "
            "token from `c2d user add`"
        )

    def open_session(self, token: str | None, lifetime_s: float) -> tuple[User, str]:
        """Exchange ``token`` for a browser session of ``lifetime_s`` seconds: the user and the
        session's secret, which only the caller's cookie holds (the store keeps its sha256).

        Signing in changes nothing the ledger records, so it writes no entry. Raises
        ``Unauthenticated`` (missing or unknown token), ``InvalidRequest`` (no lifetime).
        """
        if lifetime_s <= 0:
            raise InvalidRequest("a session must last some time; set a positive lifetime")
        user = self.authenticate(token)
        secret = secrets.token_urlsafe(32)
        now = self._now()
        with self._store.transaction():
            self._store.add_session(token_hash(secret), user.name, now, now + lifetime_s)
        return user, secret

    def session_user(self, secret: str | None) -> User:
        """The user of the live session ``secret``; ``Unauthenticated`` for none, an unknown or
        an ended one (the person signs in again)."""
        if secret:
            presented = token_hash(secret)
            found = self._store.session_user(presented, self._now())
            if found is not None and hmac.compare_digest(found[1], presented):
                return found[0]
        raise Unauthenticated("no session, or it ended; sign in again with your token")

    def close_session(self, secret: str | None) -> None:
        """End the session ``secret`` (signing out); an unknown one is already ended."""
        if secret:
            with self._store.transaction():
                self._store.delete_session(token_hash(secret))

    def list_users(self) -> list[User]:
        """Every user (for operators)."""
        return self._store.list_users()

    def register_dataset(
        self,
        actor: User,
        name: str,
        path: Path | str,
        policy: DatasetPolicy,
        *,
        allow_unreadable: bool = False,
        profile_max_rows: int | None = None,
    ) -> Dataset:
        """Hash the folder at ``path`` and register (or re-register) it as dataset ``name``.

        Only owners and admins; an owner registers for themself (``policy.owner``), an admin
        for any owner. Re-registering an existing name (new data, new policy) is for its owner
        or an admin. Unchanged files are not re-hashed. The tables are profiled
        (``jobs.schemas``; at most ``profile_max_rows`` rows of each feed the statistics) and
        the profile is kept for the owner. Entry ``dataset.registered`` (subject
        ``dataset:NAME``; the host path is not written to the public log, nor the public
        columns of a hidden schema).

        The folder's real path must lie inside one of the host's dataset roots, outside the
        state folder (``jobs.dataset_roots``), and must not be, lie inside or contain a folder
        registered by another owner (the same owner may register overlapping folders, and
        replaces her own datasets as before).

        Raises ``NotAllowed`` (role, owner, a folder outside the roots or another owner's),
        ``InvalidRequest`` (bad name, relative path), ``NotFound`` (unknown owner),
        ``DatasetError`` (missing, empty, a link or device inside, or files the sandbox user
        cannot read unless ``allow_unreadable``).
        """
        if not access.may_register(actor):
            raise NotAllowed("only data owners and admins register datasets")
        if actor.role is not Role.ADMIN and policy.owner != actor.name:
            raise NotAllowed(f"you can register datasets for yourself only, not {policy.owner}")
        check_name(name, "dataset name")
        owner = self._store.get_user(policy.owner)
        if owner is None or owner.role is Role.RESEARCHER:
            raise NotFound(f"{policy.owner!r} is not a registered data owner or admin")
        self._check_may_replace(actor, name)
        folder = self.dataset_roots.check(path)
        self._check_not_taken(folder, name, policy.owner, path)
        root = str(folder)
        # Hash outside the transaction: it can take long and must not hold the write lock.
        result = scan(folder, self._store.file_cache(root))
        if not result.entries:
            raise DatasetError(f"{root} holds no files; pass the folder with the data", path=root)
        if result.unreadable and not allow_unreadable:
            raise DatasetError(readable_hint(result), path=result.unreadable[0])
        result, profile = profile_scanned(
            result, policy, max_rows=profile_max_rows, rescan=rescanner(Path(root))
        )
        with self._store.transaction() as conn:
            previous = self._check_may_replace(actor, name)
            # Again under the write lock: the folder may have been swapped for a link while it
            # was hashed, or another owner may have registered an overlapping one meanwhile.
            if self.dataset_roots.check(result.root) != folder or result.root != root:
                raise DatasetError(
                    f"{path} changed (a link replaced?) while c2d read it; register it again "
                    "when nothing changes it",
                    path=str(path),
                )
            self._check_not_taken(folder, name, policy.owner, path)
            dataset = Dataset(
                name=name,
                path=result.root,
                digest=result.digest,
                files=result.files,
                bytes=result.bytes,
                policy=policy,
                registered=self._now(),
                registered_by=actor.name,
            )
            self._store.put_dataset(dataset)
            self._store.put_profile(name, profile)
            self._store.save_file_cache(result.root, result.cache)
            body = {
                "digest": dataset.digest,
                "files": dataset.files,
                "bytes": dataset.bytes,
                "policy": policy.public_dump(),
                "schema_digest": profile.schema_digest,
                "replaces": previous.digest if previous else None,
            }
            self._record(conn, "dataset.registered", actor.name, dataset_subject(name), body)
        return dataset

    def _check_may_replace(self, actor: User, name: str) -> Dataset | None:
        existing = self._store.get_dataset(name)
        if existing is not None and not access.governs(actor, existing):
            raise NotAllowed(
                f"dataset {name!r} belongs to {existing.owner}; pick another name ({NAME_HELP})"
            )
        return existing

    def _check_not_taken(self, folder: Path, name: str, owner: str, shown: Path | str) -> None:
        """Refuse ``folder`` if it overlaps a dataset of another owner (other than ``name``,
        which is being replaced). The message names neither that dataset nor its owner."""
        for other in self._store.list_datasets():
            if other.name == name or other.owner == owner:
                continue
            stored = Path(other.path)
            try:
                now = stored.resolve()  # where it leads today, if a link replaced a part of it
            except (OSError, RuntimeError):
                now = stored
            if overlaps(folder, stored) or overlaps(folder, now):
                raise NotAllowed(
                    f"{shown} is, lies inside or contains a folder that another owner has "
                    "registered as a dataset; register a folder that holds only your own data"
                )

    def current_dataset_digest(self, name: str) -> str:
        """Re-hash dataset ``name`` where it lives (changed files only) and return its digest.

        For the worker's pre-run check; keeps the refreshed hash cache. The folder must still
        be where it was registered and inside the host's dataset roots (the administrator may
        have narrowed them, or a link may have replaced a folder since). Raises ``NotFound``
        or ``DatasetError``.
        """
        dataset = self._dataset(name)
        try:
            still = self.dataset_roots.check(dataset.path) == Path(dataset.path)
        except (NotAllowed, InvalidRequest):
            still = False
        if not still:
            # This reason reaches the researcher and the ledger: no host path in it.
            raise DatasetError(
                f"dataset {name!r} is no longer inside this host's dataset roots, or its folder "
                "now resolves elsewhere; its owner registers it again under a root "
                f"(`c2d dataset add {name} PATH`)",
                path=dataset.path,
            )
        result = scan(Path(dataset.path), self._store.file_cache(dataset.path))
        with self._store.transaction():
            self._store.save_file_cache(result.root, result.cache)
        return result.digest

    def get_dataset(self, actor: User, name: str) -> Dataset:
        """Dataset ``name`` (every authenticated user may see datasets); ``NotFound``."""
        del actor  # every role may see datasets; kept for a uniform, auditable signature
        return self._dataset(name)

    def list_datasets(self, actor: User) -> list[Dataset]:
        """Every registered dataset, by name."""
        del actor
        return self._store.list_datasets()

    def dataset_of(self, job: Job) -> Dataset:
        """The dataset a job runs on (for workers and the API, no permission check)."""
        return self._dataset(job.dataset)
