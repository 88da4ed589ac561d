"""Where datasets may be registered: the host's roots, the state folder, other owners' folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.dataset_roots import DatasetRoots, overlaps
from jobs.errors import DatasetError, InvalidRequest, NotAllowed
from jobs.models import DatasetPolicy
from tests.kit.hosts import TestHost, register_dataset


def folder_with_data(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "rows.csv").write_text("a\n1\n")
    return path


# -- the roots alone ---------------------------------------------------------------------------


@pytest.fixture
def host(tmp_path: Path) -> tuple[DatasetRoots, Path]:
    roots = tmp_path / "datasets"
    (roots / "alice" / "patients").mkdir(parents=True)
    (tmp_path / "state").mkdir()
    (tmp_path / "outside").mkdir()
    return DatasetRoots.of([roots], tmp_path / "state"), tmp_path


def test_a_folder_inside_a_root_passes_as_its_real_path(host) -> None:
    roots, tmp = host
    folder = tmp / "datasets" / "alice" / "patients"
    assert roots.check(folder) == folder.resolve()
    assert roots.check(f"{tmp}/datasets/alice/../alice/patients") == folder.resolve()
    (tmp / "datasets" / "link").symlink_to(folder)  # a link inside a root, to inside a root
    assert roots.check(tmp / "datasets" / "link") == folder.resolve()


def test_without_roots_nothing_passes_and_the_message_names_the_setting(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    with pytest.raises(NotAllowed, match="C2D_DATASET_ROOTS"):
        DatasetRoots().check(tmp_path / "d")


@pytest.mark.parametrize(
    "where",
    [
        "/etc",
        "/",
        "{tmp}/outside",
        "{tmp}",  # the roots' parent
        "{tmp}/datasets/../outside",  # `..` out of a root
        "{tmp}/datasets-evil",  # a sibling whose name starts like the root
    ],
)
def test_a_folder_outside_every_root_is_refused(host, where: str) -> None:
    roots, tmp = host
    (tmp / "datasets-evil").mkdir(exist_ok=True)
    with pytest.raises(NotAllowed, match="not inside a dataset root"):
        roots.check(where.format(tmp=tmp))


def test_a_link_inside_a_root_that_leads_outside_is_refused(host) -> None:
    roots, tmp = host
    (tmp / "datasets" / "alice" / "etc").symlink_to("/etc")
    with pytest.raises(NotAllowed, match=r"through a link or '\.\.'") as caught:
        roots.check(tmp / "datasets" / "alice" / "etc")
    assert "(really" not in caught.value.message


def test_a_root_itself_is_not_a_dataset(host) -> None:
    roots, tmp = host
    with pytest.raises(NotAllowed, match="dataset root itself"):
        roots.check(tmp / "datasets")


def test_the_state_folder_never_passes_even_inside_a_root(tmp_path: Path) -> None:
    state = tmp_path / "datasets" / "home"
    (state / "artifacts").mkdir(parents=True)
    roots = DatasetRoots.of([tmp_path / "datasets"], state)
    for folder in (state, state / "artifacts"):
        with pytest.raises(NotAllowed, match="state folder"):
            roots.check(folder)
    # A folder that contains the state folder would hand the ledger's key to jobs too.
    roots_above = DatasetRoots.of([tmp_path], state)
    with pytest.raises(NotAllowed, match="state folder"):
        roots_above.check(tmp_path / "datasets")


def test_a_relative_path_is_refused(host) -> None:
    roots, _ = host
    with pytest.raises(InvalidRequest, match="absolute"):
        roots.check("datasets/alice/patients")


def test_overlaps_is_equal_inside_or_containing() -> None:
    a = Path("/srv/d/alice")
    assert overlaps(a, a)
    assert overlaps(a, a / "x")
    assert overlaps(a / "x", a)
    assert not overlaps(a, Path("/srv/d/alice2"))
    assert not overlaps(a, Path("/srv/d/bob"))


# -- registration through the service -----------------------------------------------------------


def nothing_changed(world, name: str, size: int) -> None:
    assert world.store.get_dataset(name) is None
    assert world.ledger.entries_for(f"dataset:{name}") == []
    assert world.ledger.size() == size


@pytest.mark.parametrize(
    "where",
    ["iris", "iris/more", "."],  # olga's folder, a folder inside it, the folder holding it
)
def test_another_owner_cannot_register_a_folder_overlapping_olgas(world, where: str) -> None:
    size = world.ledger.size()
    folder = world.tmp / "iris" if where == "iris" else world.tmp / where
    if where == ".":
        folder = world.tmp / "all"
        folder.mkdir()
        (folder / "x.csv").write_text("1\n")
        (world.tmp / "iris").rename(folder / "iris")
        # olga's dataset now lives in all/iris: register it there again, as olga may.
        world.register(world.olga, "iris", folder / "iris", DatasetPolicy(owner="olga"))
        size = world.ledger.size()
    with pytest.raises(NotAllowed, match="another owner") as caught:
        world.register(world.otto, "copy", folder, DatasetPolicy(owner="otto"))
    # Neither the other dataset's name nor its owner is told.
    assert "iris" not in caught.value.message.replace(str(folder), "")
    assert "olga" not in caught.value.message
    nothing_changed(world, "copy", size)


def test_an_admin_cannot_register_olgas_folder_for_another_owner(world) -> None:
    size = world.ledger.size()
    with pytest.raises(NotAllowed, match="another owner"):
        world.register(
            world.ada,
            "copy",
            world.tmp / "iris",
            DatasetPolicy(owner="otto", public_values={"*": ["species"]}),
        )
    nothing_changed(world, "copy", size)


def test_a_link_to_olgas_folder_is_her_folder(world) -> None:
    (world.tmp / "alias").symlink_to(world.tmp / "iris")
    size = world.ledger.size()
    with pytest.raises(NotAllowed, match="another owner"):
        world.register(
            world.otto, "copy", world.tmp / "alias" / "more", DatasetPolicy(owner="otto")
        )
    nothing_changed(world, "copy", size)


def test_the_same_owner_may_replace_and_overlap_her_own_datasets(world) -> None:
    again = world.register(
        world.olga, "iris", world.tmp / "iris", DatasetPolicy(owner="olga", schema="stats")
    )
    assert again.policy.schema_view == "stats"
    part = world.register(
        world.olga, "iris-more", world.tmp / "iris" / "more", DatasetPolicy(owner="olga")
    )
    assert part.path == ""  # the path stays on the data host
    local = world.host.registry.get_dataset("iris-more")
    assert local.path == str((world.tmp / "iris" / "more").resolve())
    # An admin re-registering olga's dataset for her is the same owner, too.
    world.register(world.ada, "iris", world.tmp / "iris", DatasetPolicy(owner="olga"))


def test_a_disjoint_folder_of_another_owner_is_fine(world) -> None:
    dataset = world.register(
        world.otto, "mine", folder_with_data(world.tmp / "otto"), DatasetPolicy(owner="otto")
    )
    assert dataset.owner == "otto"


def test_registration_outside_the_roots_changes_nothing(world) -> None:
    size = world.ledger.size()
    for where in ("/etc", str(world.tmp.parent)):
        with pytest.raises(NotAllowed, match="not inside a dataset root"):
            world.register(world.olga, "etc", where, DatasetPolicy(owner="olga"))
    nothing_changed(world, "etc", size)


def test_a_host_without_roots_registers_nothing(world) -> None:
    size = world.ledger.size()
    bare = world.host.settings.model_copy(update={"dataset_roots": ""})
    host = TestHost(bare, world.host.identity, world.host.registry)
    with pytest.raises(NotAllowed, match="C2D_DATASET_ROOTS"):
        register_dataset(
            world.service,
            world.olga,
            host,
            "d",
            folder_with_data(world.tmp / "d"),
            DatasetPolicy(owner="olga"),
        )
    nothing_changed(world, "d", size)


def test_a_dataset_outside_the_roots_no_longer_runs(world) -> None:
    narrowed = world.host.settings.model_copy(
        update={"dataset_roots": str(world.tmp / "elsewhere")}
    )
    with pytest.raises(DatasetError, match="no longer inside this host's dataset roots") as e:
        world.current_digest("iris", narrowed)
    assert str(world.tmp) not in e.value.message  # researchers read it: no host path
    assert world.current_digest("iris").startswith("sha256:")


def test_a_dataset_folder_replaced_by_a_link_no_longer_runs(world) -> None:
    real = world.tmp / "iris"
    real.rename(world.tmp / "iris-real")
    real.symlink_to(world.tmp / "iris-real")
    with pytest.raises(DatasetError, match="resolves elsewhere") as caught:
        world.current_digest("iris")
    assert str(world.tmp) not in caught.value.message
