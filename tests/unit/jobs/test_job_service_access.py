"""Who sees which jobs, logs and downloads; invisible jobs look exactly like missing ones."""

import pytest

from jobs.errors import Conflict, NotAllowed, NotFound
from jobs.models import DatasetPolicy
from jobs.states import JobState
from tests.kit.worlds import ok_outcome

S = JobState

# who -> may see rita's job on olga's dataset
SEES = {"rita": True, "olga": True, "ada": True, "rob": False, "otto": False}


@pytest.mark.parametrize("who", SEES)
def test_get_job_visibility(world, who):
    job = world.submit("rita")
    if SEES[who]:
        assert world.service.get_job(world.users[who], job.id).id == job.id
    else:
        with pytest.raises(NotFound) as hidden:
            world.service.get_job(world.users[who], job.id)
        with pytest.raises(NotFound) as missing:
            world.service.get_job(world.users[who], "job9999")
        assert str(hidden.value) == str(missing.value).replace("job9999", job.id)


def test_list_jobs_per_role(world):
    ritas = world.submit("rita")
    robs = world.approved("rob")
    olgas = world.submit("olga")

    def ids(who, **kw):
        return [j.id for j in world.service.list_jobs(world.users[who], **kw)]

    assert ids("rita") == [ritas.id]
    assert ids("rob") == [robs.id]
    assert ids("olga") == [ritas.id, robs.id, olgas.id]
    assert ids("otto") == []
    assert ids("ada") == [ritas.id, robs.id, olgas.id]
    assert ids("olga", state=S.APPROVED) == [robs.id]


def finished(w, who="rita"):
    job = w.approved(who)
    claim = w.service.claim(job.id, "host-a", 60)
    return w.service.finish(job.id, claim.fence, ok_outcome())


def test_logs_stay_with_the_owner_until_release(reviewed_world):
    w = reviewed_world
    job = finished(w)
    assert w.service.authorize_logs(w.olga, job.id).id == job.id
    assert w.service.authorize_logs(w.ada, job.id).id == job.id
    with pytest.raises(NotAllowed, match="until its outputs are released"):
        w.service.authorize_logs(w.rita, job.id)
    with pytest.raises(NotFound):
        w.service.authorize_logs(w.rob, job.id)
    w.service.release(w.olga, job.id)
    assert w.service.authorize_logs(w.rita, job.id).id == job.id


def test_policy_can_show_logs_to_the_researcher(world):
    (world.tmp / "open").mkdir()
    (world.tmp / "open" / "a.csv").write_text("1\n")
    world.register(
        world.olga,
        "open",
        world.tmp / "open",
        DatasetPolicy(owner="olga", logs_visible="researcher"),
    )
    job = world.submit(dataset_name="open")
    assert world.service.authorize_logs(world.rita, job.id).id == job.id


def test_nothing_is_downloadable_before_release(reviewed_world):
    w = reviewed_world
    job = finished(w)
    for who in ("rita", "olga"):
        with pytest.raises(Conflict, match=f"c2d release {job.id}"):
            w.service.authorize_download(w.users[who], job.id)
    with pytest.raises(NotFound):
        w.service.authorize_download(w.rob, job.id)
    w.service.release(w.olga, job.id)
    assert w.service.authorize_download(w.rita, job.id).state is S.RELEASED
    with pytest.raises(NotFound):
        w.service.authorize_download(w.rob, job.id)


def test_pending_jobs_are_not_downloadable(world):
    job = world.submit()
    with pytest.raises(Conflict, match="only a succeeded job"):
        world.service.authorize_download(world.rita, job.id)


def test_last_approved_for_gives_the_previous_approved_code(world):
    assert world.service.last_approved_for("rita", "iris") is None
    first = world.approved(text="v1\n")
    world.clock.advance(10)
    second = world.approved(text="v2\n")
    world.clock.advance(10)
    world.submit(text="v3 pending\n")
    world.approved("rob", text="robs\n")
    assert world.service.last_approved_for("rita", "iris").id == second.id
    assert world.service.last_approved_for("rita", "iris", exclude=second.id).id == first.id


def test_load_job_and_dataset_of_for_workers(world):
    job = world.submit()
    assert world.service.load_job(job.id) == world.service.get_job(world.rita, job.id)
    assert world.service.dataset_of(job).name == "iris"
    with pytest.raises(NotFound):
        world.service.load_job("nope")
