"""Users and tokens, and datasets as their data hosts attested them, with their policies."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from jobs import access
from jobs.attestations import dataset_statement
from jobs.digests import canonical_digest
from jobs.errors import Conflict, InvalidRequest, NotAllowed, NotFound, Unauthenticated
from jobs.fields import NAME_HELP
from jobs.models import Dataset, DatasetPolicy, Job, Role, User
from jobs.output_checks import OutputChecks
from jobs.people_records import EndedToken, refusal
from jobs.schema_records import ProfileRecord
from jobs.service_core import ServiceCore, build, check_name, dataset_subject, user_subject
from jobs.signed_actions import SignedEnvelope, publish_statement


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
        role, ``Conflict`` if the name is taken, also by a revoked user (``jobs.people``).
        """
        user = build(User, name=name, role=role, created=self._now())
        token = new_token()
        with self._store.transaction() as conn:
            gone = self._store.account(user.name)
            if gone is not None and gone.revoked is not None:
                raise Conflict(
                    f"user {user.name!r} was revoked by {gone.revoked_by}; a revoked name is not "
                    "given out again, so the ledger's entries under it keep meaning one person. "
                    "Add the person under a new name"
                )
            self._store.add_user(user, token_hash(token))
            self._record(
                conn, "user.added", actor, user_subject(user.name), {"role": user.role.value}
            )
        return user, token

    def authenticate(self, token: str | None) -> User:
        """The user holding ``token``; ``Unauthenticated`` for a missing or unknown token, or
        one that was revoked or rotated away (whose message says so and what to do)."""
        if token:
            presented = token_hash(token)
            found = self._store.user_by_token_hash(presented)
            if found is not None and hmac.compare_digest(found[1], presented):
                return found[0]
            fate = self._store.token_fate(presented)
            if fate is not None:
                raise EndedToken(refusal(fate))
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
        policy: DatasetPolicy,
        statement: dict[str, Any],
        signature: str,
        profile: ProfileRecord,
        signed: SignedEnvelope | None = None,
    ) -> Dataset:
        """Record dataset ``name`` as its data host attested it, with its owner's policy.

        The host hashed and profiled the folder and signed ``statement``
        (``c2d.host.dataset/1``: host, name, owner, digest, files, bytes, profile digest); the
        folder's path stayed on the host. Only owners (for themselves) and admins; replacing a
        dataset is for its owner or an admin. The statement must name this dataset, this owner
        and the policy's host, ``profile`` must hash to its profile digest, and ``signature``
        must be the host's enrolled key's. Entry ``dataset.registered`` (with the host, its
        key's fingerprint and signature; not the public columns of a hidden schema).

        ``signed``, when given, must be the actor's ``c2d/publish`` statement over this name,
        the host's statement and the policy (``jobs.signed_actions.publish_statement``); it
        goes into the entry as ``signed``; unsigned, the server's signature policy decides
        (``ServiceCore._signed``). The signer is whoever acts: when an admin registers for an
        owner, the admin signs (with the admin's key) that she published it on the owner's
        behalf, and the entry's actor, not the policy's owner, is who a verifier holds to it;
        the owner is bound only through the policy digest.

        Raises ``NotAllowed`` (role, owner, host signature, a signature by no valid key of the
        actor, an unsigned registration the policy refuses), ``InvalidRequest`` (name, a
        statement that does not match, naming the field), ``NotFound`` (unknown owner or
        host, a host not enrolled yet).
        """
        if not access.may_register(actor):
            raise NotAllowed("only data owners and admins register datasets")
        if actor.role is not Role.ADMIN and policy.owner != actor.name:
            raise NotAllowed(f"you can register datasets for yourself only, not {policy.owner}")
        check_name(name, "dataset name")
        owner = self._store.get_user(policy.owner)
        if owner is None or owner.role is Role.RESEARCHER:
            raise NotFound(f"{policy.owner!r} is not a registered data owner or admin")
        host = self._store.get_host(policy.host)
        if host is None or host.public_key is None:
            raise NotFound(
                f"there is no enrolled data host {policy.host!r}; `c2d hosts` lists them"
            )
        expected = dataset_statement(
            host.name,
            name,
            policy.owner,
            str(statement.get("digest")),
            int(statement.get("files") or 0),
            int(statement.get("bytes") or 0),
            profile,
        )
        wrong = sorted(k for k in expected if statement.get(k) != expected[k])
        if wrong:
            raise InvalidRequest(
                f"the data host's statement does not match this registration ({', '.join(wrong)});"
                " register the dataset on its data host with `c2d dataset add NAME PATH`"
            )
        self.check_host_signature(host, statement, signature)
        digest, files = statement.get("digest"), statement.get("files")
        size = statement.get("bytes")
        with self._store.transaction() as conn:
            previous = self._check_may_replace(actor, name)
            proof = self._signed(
                actor.name,
                signed,
                lambda _: publish_statement(
                    self._ledger.origin, actor.name, name, statement, policy.public_dump()
                ),
            )
            dataset = build(
                Dataset,
                name=name,
                path="",
                digest=digest,
                files=files,
                bytes=size,
                policy=policy,
                registered=self._now(),
                registered_by=actor.name,
            )
            self._store.put_dataset(dataset)
            self._store.put_profile(name, profile)
            body = {
                "digest": dataset.digest,
                "files": dataset.files,
                "bytes": dataset.bytes,
                "policy": policy.public_dump(),
                "schema_digest": profile.schema_digest,
                "replaces": previous.digest if previous else None,
                "host": host.name,
                "host_key": host.fingerprint,
                "host_signature": signature,
                "host_statement_digest": canonical_digest(statement),
                # With it, anyone can rebuild the host's statement from the entry and check
                # its signature offline (it names nothing the statement's digest did not).
                "profile_digest": statement.get("profile_digest"),
                **proof,
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

    def set_checks(self, actor: User, name: str, checks: OutputChecks) -> Dataset:
        """Change the automatic output checks of dataset ``name`` (its owner or an admin).

        They apply to runs that finish from now on. Entry ``dataset.checks`` with the new
        settings. Raises ``NotFound``, ``NotAllowed``.
        """
        with self._store.transaction() as conn:
            dataset = self._dataset(name)
            if not access.governs(actor, dataset):
                raise NotAllowed(
                    f"dataset {name!r} belongs to {dataset.owner}; only its owner or an admin "
                    "changes its output checks"
                )
            policy = dataset.policy.model_copy(update={"checks": checks})
            dataset = dataset.model_copy(update={"policy": policy})
            self._store.put_dataset(dataset)
            body = {"checks": checks.model_dump(mode="json")}
            self._record(conn, "dataset.checks", actor.name, dataset_subject(name), body)
        return dataset

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
