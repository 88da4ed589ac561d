"""``Service``: every state change of c2d, each one transaction plus its ledger entry.

The API handlers and the Celery tasks only translate to these calls. Every state change opens
``BEGIN IMMEDIATE`` on the store's connection, checks who may do it and that the job is in a
state the transition table allows it to leave, writes the change with a compare-and-set, and
appends its ledger entry with ``ledger.append(..., conn=conn)`` in the same transaction, so
both commit or neither does.

=========================  ===============================  ==========================
method                     state change                     ledger entry (subject)
=========================  ===============================  ==========================
add_user                   new user                         user.added (user:NAME)
register_dataset           new or replaced dataset          dataset.registered (dataset:NAME)
set_checks                 a dataset's output checks        dataset.checks (dataset:NAME)
submit                     -> pending (-> approved)         job.submitted (+ job.approved)
approve                    pending -> approved              job.approved
reject                     pending -> rejected              job.rejected
trust                      trusted code for a dataset,      dataset.trusted (dataset:NAME)
                           one researcher and params (any)
claim                      approved -> running (or adopt)   job.started / job.reclaimed
heartbeat                  lease extended                   (none)
finish                     running -> succeeded | failed    job.finished (+ job.released)
fail_expired               running -> failed                job.finished
release                    succeeded -> released            job.released
refuse                     succeeded -> cancelled           job.refused
cancel                     pending|approved|running ->      job.cancelled
                           cancelled
record_dryrun              (none: a dry run on mock data)   job.dryrun
add_host                   new data host (or renewed)       host.added (host:NAME)
enroll_host                the host's key and credential    host.enrolled (host:NAME)
revoke_user                a user revoked for good          user.revoked (user:NAME)
rotate_token               a user's new token               user.token_rotated (user:NAME)
register_key               a person's public key            user.key (user:NAME)
rotate_key                 a new key for the old one        user.key + user.key_revoked
revoke_key                 a person's key revoked           user.key_revoked (user:NAME)
=========================  ===============================  ==========================

Entries about a job have the job id as subject; the actor is the user's name, ``worker:NAME``
for workers, ``reconciler`` or ``operator`` for the system.
"""

from __future__ import annotations

from jobs.accounts import Accounts, token_hash
from jobs.dryruns import DryRuns
from jobs.execution import Claim, Execution
from jobs.hosts import Hosts
from jobs.limits import Limits
from jobs.people import People
from jobs.people_keys import PeopleKeys
from jobs.queries import Queries
from jobs.review import Review
from jobs.schemas import Schemas

__all__ = ["Claim", "Limits", "Service", "token_hash"]


class Service(Accounts, People, PeopleKeys, Review, Execution, Queries, Schemas, DryRuns, Hosts):
    """The job service: ``Service(store, ledger, clock=time.time, limits=Limits())``.

    ``store`` and ``ledger`` must use the same database file. ``clock`` returns Unix seconds
    and is injectable so lease tests are deterministic. Safe to share between threads. Where
    datasets may live is each data host's business (``runner.host.datasets``).
    """
