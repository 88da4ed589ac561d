"""The people's state changes: submit, approve, reject, trust, release, refuse, cancel.

Each is one transaction holding the state change and its ledger entry (two of each when a
policy acts at once: approval of trusted code on submit).

Trust is narrow, because code digests are public in the ledger: a trusted code digest
approves a new job by policy only if a trust row on the job's dataset matches its code, its
researcher and its params digest (or was set for any params), and the researcher is neither
the dataset's owner nor the person who set the trust (who must still govern the dataset).
Anyone else submitting the same code waits for review like everyone.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from jobs import access
from jobs.digests import canonical_digest, canonical_json, is_digest
from jobs.errors import (
    Conflict,
    InvalidRequest,
    InvalidTransition,
    NotAllowed,
    SpecError,
    TooLarge,
)
from jobs.fields import check_note
from jobs.images import ImageRecord
from jobs.limits import check_resources
from jobs.models import Approval, Dataset, Job, JobSpec, TrustedCode, User
from jobs.output_checks import failed, release_body
from jobs.service_core import ServiceCore, build, dataset_subject
from jobs.signed_actions import (
    ActionStatement,
    SignedEnvelope,
    decision_statement,
    release_statement,
    submit_statement,
    trust_statement,
)
from jobs.states import JobState, check_transition
from jobs.units import format_size

S = JobState


def _digests(job: Job) -> dict[str, str]:
    return {
        "code_digest": job.code_digest,
        "image_id": job.image_id,
        "dataset_digest": job.dataset_digest,
        "params_digest": job.params_digest,
    }


def _fields(job: Job) -> dict[str, str]:
    """The fields of ``job`` the decision and trust statements name."""
    return {"id": job.id, "dataset": job.dataset, "researcher": job.researcher, **_digests(job)}


def _note(text: str, what: str) -> str:
    """``text`` if it is a note people may write (``check_note``); ``InvalidRequest`` if not."""
    try:
        return check_note(text)
    except ValueError as exc:
        raise InvalidRequest(f"the {what} {exc}") from None


def _image_entry(image: ImageRecord | None) -> dict[str, Any]:
    if image is None:
        return {}
    return {
        "own_image": {
            "source": image.source,
            "bundle_digest": image.bundle_digest,
            "dockerfile": image.dockerfile,
            "archive_sha256": image.archive_sha256,
            "build_log_digest": image.build_log_digest,
        }
    }


class Review(ServiceCore):
    """Submission and the data owner's decisions."""

    def submit(
        self,
        actor: User,
        spec: JobSpec,
        dataset_name: str | None,
        code_digest: str,
        bundle_files: list[str],
        image_id: str,
        params: dict[str, Any] | None = None,
        image: ImageRecord | None = None,
        signed: SignedEnvelope | None = None,
    ) -> Job:
        """Record a new pending job; approve it at once if its code is trusted for the dataset.

        For a job that brings its own image, ``code_digest`` is the bundle's digest and
        ``image`` what the data host built or loaded (its ID must be ``image_id``); the job's
        code digest then covers both (``jobs.images``), and the record is stored with the job.

        ``dataset_name`` overrides ``spec.dataset``; ``params`` (the effective parameters)
        replace ``spec.params`` when given. Entries ``job.submitted`` and, when a trust
        matches (see the module's docstring), ``job.approved`` with ``by_policy: true`` and the
        ``trust`` it relied on (``_trust_reference``). ``signed``, when given, must be the
        actor's ``c2d/submit`` statement for this bundle (``code_digest`` as uploaded),
        environment, dataset and params, with a nonce not used before; it goes into
        ``job.submitted``.

        Raises ``SpecError`` (no dataset named), ``NotFound`` (unknown dataset),
        ``InvalidRequest`` (bad digest or image id; a signed statement that differs),
        ``LimitExceeded`` (resources above the dataset's caps or the host's limits),
        ``TooLarge`` (params), ``NotAllowed`` (a signature by no valid key of the actor),
        ``Conflict`` (a replayed nonce).
        """
        name = dataset_name or spec.dataset
        if name is None:
            raise SpecError(
                "no dataset given: set `dataset:` in job.yaml or pass --dataset NAME",
                field="dataset",
                allowed="the name of a registered dataset (`c2d dataset list`)",
            )
        if not is_digest(code_digest):
            raise InvalidRequest(f"code digest {code_digest!r} is not sha256:<64 hex digits>")
        if not image_id:
            raise InvalidRequest("no image id: the environment must resolve to a local image")
        bundle_digest = code_digest
        if image is not None:
            if image.bundle_digest != code_digest or image.image_id != image_id:
                raise InvalidRequest(
                    "the job's own image record does not match its bundle digest and image id"
                )
            code_digest = image.code_digest
        effective = params if params is not None else spec.params
        spec = JobSpec.from_data(
            {**spec.model_dump(), "dataset": name, "params": effective}, source="job spec"
        )
        size = len(canonical_json(spec.params))
        if size > self.limits.max_params_bytes:
            raise TooLarge(
                f"params take {format_size(size)} as JSON, more than the "
                f"{format_size(self.limits.max_params_bytes)} allowed; pass data files instead"
            )
        with self._store.transaction() as conn:
            dataset = self._dataset(name)
            check_resources(spec.resources, dataset.policy.caps, self.limits, name)
            now = self._now()
            job = Job(
                id=self._new_id(),
                name=spec.name,
                researcher=actor.name,
                dataset=name,
                state=S.PENDING,
                spec=spec,
                code_digest=code_digest,
                image_id=image_id,
                dataset_digest=dataset.digest,
                params_digest=canonical_digest(spec.params),
                bundle_files=list(bundle_files),
                created=now,
                updated=now,
            )
            proof = self._signed(
                actor.name,
                signed,
                lambda nonce: self._submit_statement(actor, job, bundle_digest, nonce),
            )
            self._store.insert_job(job)
            if signed is not None and not self._store.use_nonce(
                actor.name, str(signed.statement.get("nonce")), job.id
            ):
                raise Conflict(
                    f"this signed submission (key {signed.key}) was used before: its nonce "
                    "submits one job only; nothing was recorded. Submit again (`c2d submit` "
                    "signs with a fresh nonce)"
                )
            if image is not None:
                self._store.insert_job_image(job.id, image)
            body = {
                "researcher": actor.name,
                "name": spec.name,
                "dataset": name,
                **_digests(job),
                "environment": spec.environment,
                "command": spec.command,
                "resources": spec.resources.model_dump(),
                "outputs": spec.output_patterns(),
                "files": len(job.bundle_files),
                **_image_entry(image),
                **proof,
            }
            self._record(conn, "job.submitted", actor.name, job.id, body)
            trusted = self._trust_for(job, dataset)
            if trusted is not None:
                proof = {"trust": self._trust_reference(trusted)}
                self._approve_in(
                    conn, job, actor.name, trusted.trusted_by, "", by_policy=True, proof=proof
                )
            return self._job(job.id)

    def _submit_statement(self, actor: User, job: Job, bundle: str, nonce: str) -> ActionStatement:
        try:
            return submit_statement(
                self._ledger.origin,
                actor.name,
                nonce,
                dataset=job.dataset,
                bundle=bundle,
                image=job.spec.environment,
                params=job.params_digest,
            )
        except ValueError:
            raise InvalidRequest(
                "the signed submission's nonce must be 32 lowercase hex digits; nothing was "
                "recorded. `c2d submit` makes one"
            ) from None

    def _trust_reference(self, trusted: TrustedCode) -> dict[str, Any]:
        """How a policy approval names the trust it relied on: the ``dataset.trusted`` entry
        (its seq; whose body holds the owner's signed ``c2d/trust`` statement if she signed),
        who set it and from which job. A trust is unique per dataset, code, researcher and
        params, so the newest entry that matches is the one."""
        params = trusted.params_digest or "any"
        seq = None
        for entry in reversed(self._ledger.entries_for(dataset_subject(trusted.dataset))):
            body = entry.body
            if (
                entry.type == "dataset.trusted"
                and body.get("code_digest") == trusted.code_digest
                and body.get("researcher") == trusted.researcher
                and body.get("params_digest") == params
            ):
                seq = entry.seq
                break
        return {"seq": seq, "trusted_by": trusted.trusted_by, "job_id": trusted.job_id}

    def _trust_for(self, job: Job, dataset: Dataset) -> TrustedCode | None:
        """The trust that approves ``job`` by policy, if one does (the module's rule)."""
        if job.researcher == dataset.owner:
            return None  # an owner's own jobs are always reviewed by someone else
        trusted = self._store.trusted_for(
            dataset.name, job.code_digest, job.researcher, job.params_digest
        )
        if trusted is None or trusted.trusted_by == job.researcher:
            return None
        truster = self._store.get_user(trusted.trusted_by)
        if truster is None or not access.governs(truster, dataset):
            return None  # set by someone who no longer decides about this dataset
        return trusted

    def _approve_in(
        self,
        conn: sqlite3.Connection,
        job: Job,
        actor: str,
        approver: str,
        note: str,
        *,
        by_policy: bool,
        proof: dict[str, Any] | None = None,
    ) -> None:
        now = self._now()
        approval = build(
            Approval,
            job_id=job.id,
            approver=approver,
            note=note,
            by_policy=by_policy,
            time=now,
            **_digests(job),
        )
        self._store.insert_approval(approval)
        self._store.update_job(job.id, expect=S.PENDING, to=S.APPROVED, updated=now)
        body = {
            "approver": approver,
            "note": note,
            "by_policy": by_policy,
            **_digests(job),
            **(proof or {}),
        }
        self._record(conn, "job.approved", actor, job.id, body)

    def _governed(self, actor: User, job_id: str, verb: str) -> tuple[Job, Dataset]:
        job, dataset = self._visible(actor, job_id)
        if not access.governs(actor, dataset):
            raise NotAllowed(
                f"only the owner of dataset {dataset.name!r} ({dataset.owner}) or an admin "
                f"can {verb} job {job_id}"
            )
        return job, dataset

    def approve(
        self, actor: User, job_id: str, note: str = "", signed: SignedEnvelope | None = None
    ) -> Job:
        """Approve a pending job, binding its code, image, dataset and params digests.

        Only the dataset's owner or an admin, and never the job's own researcher. Entry
        ``job.approved``, with ``signed`` when the actor signed the ``c2d/decision`` statement.
        Raises ``InvalidRequest`` (a note longer than ``MAX_NOTE`` or with control
        characters; a signed statement that differs), ``NotFound``, ``NotAllowed`` (also: not
        a valid key of the actor), ``InvalidTransition``.
        """
        _note(note, "note")
        with self._store.transaction() as conn:
            job, _ = self._governed(actor, job_id, "approve")
            if actor.name == job.researcher:
                raise NotAllowed("you cannot approve your own job; another owner or admin must")
            check_transition(job.state, S.APPROVED, job_id)
            proof = self._signed(
                actor.name,
                signed,
                lambda _: decision_statement(
                    self._ledger.origin, actor.name, _fields(job), "approve", note
                ),
            )
            self._approve_in(conn, job, actor.name, actor.name, note, by_policy=False, proof=proof)
            return self._job(job_id)

    def reject(
        self, actor: User, job_id: str, reason: str, signed: SignedEnvelope | None = None
    ) -> Job:
        """End a pending job with a reason the researcher will read. Entry ``job.rejected``
        (with ``signed``: a ``c2d/decision`` statement whose note is the reason).

        Raises ``InvalidRequest`` (empty, too long or with control characters), ``NotFound``,
        ``NotAllowed``, ``InvalidTransition``.
        """
        if not reason.strip():
            raise InvalidRequest("say why the job is rejected: --reason TEXT")
        _note(reason, "reason")
        with self._store.transaction() as conn:
            job, _ = self._governed(actor, job_id, "reject")
            check_transition(job.state, S.REJECTED, job_id)
            proof = self._signed(
                actor.name,
                signed,
                lambda _: decision_statement(
                    self._ledger.origin, actor.name, _fields(job), "reject", reason
                ),
            )
            now = self._now()
            self._store.update_job(
                job_id, expect=S.PENDING, to=S.REJECTED, reason=reason, finished=now, updated=now
            )
            body = {"reason": reason, **proof}
            self._record(conn, "job.rejected", actor.name, job_id, body)
            return self._job(job_id)

    def trust(
        self,
        actor: User,
        job_id: str,
        *,
        any_params: bool = False,
        signed: SignedEnvelope | None = None,
    ) -> TrustedCode:
        """Trust this job's code digest on its dataset for this job's researcher: her later
        submissions of the same code with the same params (any params with ``any_params``)
        are approved by policy. Entry ``dataset.trusted`` (subject ``dataset:NAME``) with the
        researcher and the params digest (``"any"``), and ``signed`` when the actor signed
        the ``c2d/trust`` statement.

        Only the dataset's owner or an admin, never for her own job nor for a job of the
        dataset's owner (those are never approved by policy). Raises ``NotFound``,
        ``NotAllowed``, ``Conflict`` (a trust already covers it).
        """
        with self._store.transaction() as conn:
            job, dataset = self._governed(actor, job_id, "trust the code of")
            if actor.name == job.researcher:
                raise NotAllowed("you cannot trust the code of your own job")
            if job.researcher == dataset.owner:
                raise NotAllowed(
                    f"job {job_id} is the dataset owner's own; her jobs are never approved by "
                    "policy, so someone else reviews each of them"
                )
            trusted = TrustedCode(
                dataset=dataset.name,
                code_digest=job.code_digest,
                researcher=job.researcher,
                params_digest=None if any_params else job.params_digest,
                trusted_by=actor.name,
                job_id=job_id,
                time=self._now(),
            )
            proof = self._signed(
                actor.name,
                signed,
                lambda _: trust_statement(
                    self._ledger.origin, actor.name, _fields(job), any_params=any_params
                ),
            )
            self._store.add_trust(trusted)
            body = {
                "code_digest": job.code_digest,
                "job_id": job_id,
                "researcher": job.researcher,
                "params_digest": trusted.params_digest or "any",
                **proof,
            }
            self._record(conn, "dataset.trusted", actor.name, dataset_subject(dataset.name), body)
            return trusted

    def release(
        self,
        actor: User,
        job_id: str,
        *,
        despite_checks: bool = False,
        signed: SignedEnvelope | None = None,
    ) -> Job:
        """Release a succeeded job's outputs to its researcher. Entry ``job.released``, with
        the output checks' results (``jobs.output_checks.release_body``), and ``signed``
        when the actor signed the ``c2d/release`` statement naming the held outputs.

        Only the dataset's owner or an admin. A failed output check does not block the release,
        but the releaser must say they saw it (``despite_checks``); otherwise ``Conflict``
        names what failed. Raises ``NotFound``, ``NotAllowed``, ``InvalidTransition``.
        """
        with self._store.transaction() as conn:
            job, _ = self._governed(actor, job_id, "release")
            check_transition(job.state, S.RELEASED, job_id)
            results = job.outcome.checks if job.outcome else []
            bad = failed(results)
            if bad and not despite_checks:
                raise Conflict(
                    f"job {job_id}'s outputs failed {len(bad)} automatic check(s): "
                    + "; ".join(f"{r.check}: {r.detail}" for r in bad)
                    + f". Look at them (`c2d review {job_id}`); release anyway with "
                    f"`c2d release {job_id} --despite-checks`, or refuse with "
                    f"`c2d refuse {job_id} --reason`"
                )
            held = [o.model_dump() for o in job.outcome.outputs] if job.outcome else []
            proof = self._signed(
                actor.name,
                signed,
                lambda _: release_statement(self._ledger.origin, actor.name, job_id, held),
            )
            self._store.update_job(job_id, expect=S.SUCCEEDED, to=S.RELEASED, updated=self._now())
            body = {
                "by_policy": False,
                **release_body(results),
                "despite_checks": bool(bad),
                **proof,
            }
            self._record(conn, "job.released", actor.name, job_id, body)
            return self._job(job_id)

    def refuse(self, actor: User, job_id: str, reason: str) -> Job:
        """Refuse to release a succeeded job's outputs: succeeded -> cancelled, for good, with a
        reason the researcher reads (the outputs never leave). Entry ``job.refused``.

        Only the dataset's owner or an admin. Raises ``InvalidRequest`` (empty, too long or
        with control characters), ``NotFound``, ``NotAllowed``, ``InvalidTransition``.
        """
        if not reason.strip():
            raise InvalidRequest("say why the outputs are not released: --reason TEXT")
        _note(reason, "reason")
        with self._store.transaction() as conn:
            job, dataset = self._governed(actor, job_id, "refuse the outputs of")
            if job.state is not S.SUCCEEDED:
                raise InvalidTransition(job.state.value, "cancelled (outputs refused)", job_id)
            now = self._now()
            text = f"the owner of dataset {dataset.name!r} refused to release the outputs: {reason}"
            self._store.update_job(
                job_id, expect=S.SUCCEEDED, to=S.CANCELLED, reason=text, updated=now
            )
            self._record(conn, "job.refused", actor.name, job_id, {"reason": reason})
            return self._job(job_id)

    def cancel(self, actor: User, job_id: str, reason: str = "") -> Job:
        """Cancel a pending, approved or running job. Entry ``job.cancelled``.

        The job's researcher, the dataset's owner or an admin. A running job's worker learns
        it at its next heartbeat (``LeaseLost`` with ``cancelled``) and stops the container.
        Raises ``InvalidRequest`` (a reason too long or with control characters),
        ``NotFound``, ``NotAllowed``, ``InvalidTransition``.
        """
        _note(reason, "reason")
        with self._store.transaction() as conn:
            # Everyone who can see a job (researcher, owner, admin) may cancel it.
            job, _ = self._visible(actor, job_id)
            if job.state is S.SUCCEEDED:
                # Only the owner's refusal ends a succeeded job (``refuse``): its outputs are
                # hers to release or not, not for its researcher to withdraw from her review.
                raise Conflict(
                    f"job {job_id} has succeeded; its outputs wait for the dataset owner, who "
                    f"releases them (`c2d release {job_id}`) or refuses them "
                    f"(`c2d refuse {job_id} --reason TEXT`)"
                )
            check_transition(job.state, S.CANCELLED, job_id)
            now = self._now()
            text = f"cancelled by {actor.name}" + (f": {reason}" if reason else "")
            self._store.update_job(
                job_id, expect=job.state, to=S.CANCELLED, reason=text, finished=now, updated=now
            )
            body = {"from": job.state.value, "reason": reason}
            self._record(conn, "job.cancelled", actor.name, job_id, body)
            return self._job(job_id)
