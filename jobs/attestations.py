"""What a data host attests, as the statements it signs (``ledger.statements``).

The host builds a statement from what it did and signs it; the control plane builds the same
statement from what it was sent and checks the signature against the host's enrolled key. One
function per statement, used by both sides, so they cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from jobs.digests import canonical_digest
from jobs.models import Outcome
from jobs.schema_records import ProfileRecord

DATASET_STATEMENT = "c2d.host.dataset/1"
OUTCOME_STATEMENT = "c2d.host.outcome/1"


def profile_digest(profile: ProfileRecord) -> str:
    """The digest a dataset statement names its profile by."""
    return canonical_digest(profile.model_dump(mode="json", exclude_none=True))


def dataset_statement(
    host: str, name: str, owner: str, digest: str, files: int, size: int, profile: ProfileRecord
) -> dict[str, Any]:
    """A host's word on a dataset it registered: which, whose, its digest, size and profile."""
    return {
        "type": DATASET_STATEMENT,
        "host": host,
        "name": name,
        "owner": owner,
        "digest": digest,
        "files": files,
        "bytes": size,
        "profile_digest": profile_digest(profile),
    }


def outcome_statement(host: str, job_id: str, fence: int, outcome: Outcome) -> dict[str, Any]:
    """A host's word on a run it finished: which job, under which claim, which outcome."""
    return {
        "type": OUTCOME_STATEMENT,
        "host": host,
        "job": job_id,
        "fence": fence,
        "outcome_digest": canonical_digest(outcome.model_dump(mode="json")),
    }
