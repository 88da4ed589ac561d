"""The store: migrations, pragmas, transactions, and the state guard in Python and in SQL."""

import os
import sqlite3

import pytest

from jobs import migrations
from jobs.errors import Conflict, InvalidTransition, StoreUnavailable
from jobs.models import Dataset, DatasetPolicy, Job, Role, User
from jobs.spec import JobSpec
from jobs.states import JobState
from jobs.store import Store

D = "sha256:" + "0" * 64
S = JobState


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "c2d.db")
    with s.transaction():
        s.add_user(User(name="olga", role=Role.OWNER, created=1), "h-olga")
        s.add_user(User(name="rita", role=Role.RESEARCHER, created=1), "h-rita")
        s.put_dataset(
            Dataset(
                name="iris",
                path="/data/iris",
                digest=D,
                files=1,
                bytes=10,
                policy=DatasetPolicy(owner="olga"),
                registered=1,
                registered_by="olga",
            )
        )
    yield s
    s.close()


def job(job_id="j1", **kw):
    base = dict(
        id=job_id,
        name="t",
        researcher="rita",
        dataset="iris",
        state=S.PENDING,
        spec=JobSpec(name="t", command=["python", "t.py"]),
        code_digest=D,
        image_id="sha256:i",
        dataset_digest=D,
        params_digest=D,
        bundle_files=["t.py"],
        created=10,
        updated=10,
    )
    return Job(**{**base, **kw})


def test_new_database_is_migrated_with_the_right_pragmas(store):
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == migrations.LATEST
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert store._conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert store._conn.isolation_level is None
    conn.close()


def test_reopening_keeps_data_and_does_not_migrate_twice(store):
    with store.transaction():
        store.insert_job(job())
    again = Store(store.path)
    assert again.get_job("j1") == job()
    assert again.get_user("olga") == User(name="olga", role=Role.OWNER, created=1)
    again.close()


def test_a_newer_database_is_refused(tmp_path):
    conn = sqlite3.connect(tmp_path / "c2d.db")
    conn.execute(f"PRAGMA user_version = {migrations.LATEST + 1}")
    conn.close()
    with pytest.raises(StoreUnavailable, match="upgrade c2d"):
        Store(tmp_path / "c2d.db")


def test_transaction_rolls_back_on_error(store):
    def fail_inside():
        with store.transaction():
            store.insert_job(job())
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_inside()
    assert store.get_job("j1") is None


def test_writes_outside_a_transaction_are_refused(store):
    with pytest.raises(RuntimeError, match=r"inside store\.transaction"):
        store.insert_job(job())


def test_transactions_do_not_nest(store):
    with store.transaction(), pytest.raises(RuntimeError, match="nest"), store.transaction():
        pass


def test_update_job_compares_and_sets(store):
    with store.transaction():
        store.insert_job(job())
    with store.transaction():
        store.update_job("j1", expect=S.PENDING, to=S.APPROVED, updated=11)
    assert store.get_job("j1").state == S.APPROVED
    with pytest.raises(Conflict, match="no longer pending"), store.transaction():
        store.update_job("j1", expect=S.PENDING, to=S.REJECTED, updated=12)
    assert store.get_job("j1").state == S.APPROVED


def test_update_job_checks_the_fence(store):
    with store.transaction():
        store.insert_job(job())
        store.update_job("j1", expect=S.PENDING, to=S.APPROVED, updated=11)
        store.update_job("j1", expect=S.APPROVED, to=S.RUNNING, fence=1, lease_owner="w")
    with pytest.raises(Conflict, match="at fence 0"), store.transaction():
        store.update_job("j1", expect=S.RUNNING, at_fence=0, lease_expires=99)
    with store.transaction():
        store.update_job("j1", expect=S.RUNNING, at_fence=1, lease_expires=99)
    assert store.get_job("j1").lease_expires == 99


def test_update_job_refuses_transitions_not_in_the_table(store):
    with store.transaction():
        store.insert_job(job())
    with pytest.raises(InvalidTransition), store.transaction():
        store.update_job("j1", expect=S.PENDING, to=S.RUNNING)
    with pytest.raises(ValueError, match="state moves only by"), store.transaction():
        store.update_job("j1", expect=S.PENDING, state="running")
    assert store.get_job("j1").state == S.PENDING


@pytest.mark.parametrize(
    ("start", "target", "allowed"),
    [
        ("pending", "running", False),
        ("pending", "released", False),
        ("pending", "approved", True),
        ("pending", "bogus", False),
    ],
)
def test_sql_itself_refuses_transitions_not_in_the_table(store, start, target, allowed):
    with store.transaction():
        store.insert_job(job())
    raw = sqlite3.connect(store.path, isolation_level=None)
    if allowed:
        raw.execute("UPDATE jobs SET state = ? WHERE id = 'j1'", (target,))
    else:
        with pytest.raises(sqlite3.IntegrityError):
            raw.execute("UPDATE jobs SET state = ? WHERE id = 'j1'", (target,))
    raw.close()
    assert store.get_job("j1").state == (target if allowed else start)


def test_sql_refuses_a_new_job_that_is_not_pending(store):
    with pytest.raises(sqlite3.IntegrityError, match="pending"), store.transaction():
        store.insert_job(job(state=S.APPROVED))


def test_transition_mirror_is_repaired_on_open(store):
    raw = sqlite3.connect(store.path, isolation_level=None)
    raw.execute("INSERT INTO job_transitions VALUES ('pending', 'released')")
    raw.close()
    again = Store(store.path)
    with again.transaction():
        again.insert_job(job())
    with pytest.raises(sqlite3.IntegrityError), again.transaction() as conn:
        conn.execute("UPDATE jobs SET state = 'released' WHERE id = 'j1'")
    again.close()


def test_queries(store):
    with store.transaction():
        store.insert_job(job("j1", created=1))
        store.insert_job(job("j2", created=2))
        store.update_job("j2", expect=S.PENDING, to=S.APPROVED)
    assert [j.id for j in store.list_jobs()] == ["j1", "j2"]
    assert [j.id for j in store.list_jobs(state=S.APPROVED)] == ["j2"]
    assert [j.id for j in store.list_jobs(owner="olga")] == ["j1", "j2"]
    assert store.list_jobs(owner="rita") == []
    assert [j.id for j in store.list_jobs(researcher="rita", state=S.PENDING)] == ["j1"]
    assert store.get_job("nope") is None
    assert [d.name for d in store.list_datasets()] == ["iris"]
    assert store.list_datasets(owner="rita") == []


def test_a_forked_child_opens_its_own_connection(store):
    with store.transaction():
        store.insert_job(job())
    parent_conn = store._conn
    pid = os.fork()
    if pid == 0:  # child: must not reuse the parent's handle, and must be able to write
        code = 1
        try:
            if store._conn is not parent_conn:
                with store.transaction():
                    store.update_job("j1", expect=S.PENDING, to=S.APPROVED, updated=2)
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store._conn is parent_conn
    assert store.get_job("j1").state is S.APPROVED
