"""Users, tokens and dataset registration through the service, with their ledger entries."""

import sqlite3

import pytest

from jobs.datasets import scan
from jobs.errors import (
    Conflict,
    DatasetError,
    InvalidRequest,
    NotAllowed,
    NotFound,
    Unauthenticated,
)
from jobs.models import DatasetPolicy, Role


def test_tokens_authenticate_their_user_and_are_stored_hashed(world):
    for name, token in world.tokens.items():
        assert world.service.authenticate(token) == world.users[name]
    raw = sqlite3.connect(world.store.path)
    dump = "\n".join(raw.iterdump())
    raw.close()
    for token in world.tokens.values():
        assert token not in dump
        assert len(token) >= 43  # 32 random bytes, urlsafe base64


@pytest.mark.parametrize("token", [None, "", "x", "not-a-token-" * 4])
def test_wrong_or_missing_tokens_are_refused(world, token):
    with pytest.raises(Unauthenticated, match="C2D_TOKEN"):
        world.service.authenticate(token)


def test_a_token_is_not_accepted_with_one_character_changed(world):
    token = world.tokens["rita"]
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    with pytest.raises(Unauthenticated):
        world.service.authenticate(forged)


def test_add_user_writes_an_entry_and_refuses_duplicates_without_one(world):
    assert world.types("user:rita") == ["user.added"]
    entry = world.ledger.entries_for("user:rita")[0]
    assert entry.body == {"role": "researcher"}
    assert entry.actor == "operator"
    size = world.ledger.size()
    with pytest.raises(Conflict, match="already exists"):
        world.service.add_user("rita", Role.ADMIN)
    assert world.ledger.size() == size
    assert world.store.get_user("rita").role is Role.RESEARCHER


@pytest.mark.parametrize(("name", "role"), [("a b", "researcher"), ("", "owner"), ("x", "boss")])
def test_add_user_refuses_bad_names_and_roles(world, name, role):
    with pytest.raises(InvalidRequest):
        world.service.add_user(name, role)


def test_register_dataset_records_digest_and_policy_but_not_the_path(world):
    dataset = world.service.get_dataset(world.rita, "iris")
    assert dataset.digest == scan(world.tmp / "iris").digest
    assert (dataset.files, dataset.owner, dataset.registered_by) == (2, "olga", "olga")
    [entry] = world.ledger.entries_for("dataset:iris")
    assert entry.type == "dataset.registered"
    assert entry.actor == "olga"
    assert entry.body["digest"] == dataset.digest
    assert entry.body["policy"]["owner"] == "olga"
    assert entry.body["policy"]["caps"]["memory"] == 2 * 1024**3
    assert entry.body["replaces"] is None
    assert str(world.tmp) not in str(entry.body)


def test_registration_keeps_the_hash_cache_on_the_data_host(world):
    cache = world.host.registry.file_cache(str((world.tmp / "iris").resolve()))
    assert sorted(cache) == ["iris.csv", "more/extra.csv"]
    assert cache["iris.csv"].sha256 == scan(world.tmp / "iris").cache["iris.csv"].sha256


def test_re_registration_by_the_owner_replaces_and_says_so(world):
    old = world.service.get_dataset(world.olga, "iris")
    (world.tmp / "iris" / "iris.csv").write_text("changed\n")
    new = world.register(world.olga, "iris", world.tmp / "iris", DatasetPolicy(owner="olga"))
    assert new.digest != old.digest
    assert world.current_digest("iris") == new.digest
    entries = world.ledger.entries_for("dataset:iris")
    assert [e.type for e in entries] == ["dataset.registered"] * 2
    assert entries[1].body["replaces"] == old.digest


def new_folder(world, name="d2"):
    folder = world.tmp / name
    folder.mkdir()
    (folder / "a.csv").write_text("1\n")
    return folder


@pytest.mark.parametrize(
    ("who", "owner", "error"),
    [
        ("rita", "rita", NotAllowed),  # researchers do not register datasets
        ("otto", "olga", NotAllowed),  # an owner registers for themself only
        ("ada", "rita", NotFound),  # the owner named must be an owner or admin
    ],
)
def test_who_may_register(world, who, owner, error):
    with pytest.raises(error):
        world.register(world.users[who], "d2", new_folder(world), DatasetPolicy(owner=owner))
    assert world.store.get_dataset("d2") is None
    assert world.ledger.entries_for("dataset:d2") == []


def test_admin_registers_for_an_owner(world):
    dataset = world.register(world.ada, "d2", new_folder(world), DatasetPolicy(owner="otto"))
    assert dataset.owner == "otto"
    assert world.ledger.entries_for("dataset:d2")[0].actor == "ada"


def test_another_owner_cannot_take_over_a_name(world):
    with pytest.raises(NotAllowed, match="belongs to olga"):
        world.register(world.otto, "iris", new_folder(world), DatasetPolicy(owner="otto"))
    assert world.service.get_dataset(world.otto, "iris").owner == "olga"


def test_symlink_in_dataset_is_refused_and_nothing_recorded(world):
    folder = new_folder(world)
    (folder / "secret").symlink_to("/etc/shadow")
    with pytest.raises(DatasetError, match="secret is a symbolic link"):
        world.register(world.olga, "d2", folder, DatasetPolicy(owner="olga"))
    assert world.ledger.entries_for("dataset:d2") == []


def test_files_the_sandbox_cannot_read_are_refused_unless_allowed(world):
    folder = new_folder(world)
    (folder / "a.csv").chmod(0o600)
    with pytest.raises(DatasetError, match=r"chmod -R o\+rX"):
        world.register(world.olga, "d2", folder, DatasetPolicy(owner="olga"))
    world.register(world.olga, "d2", folder, DatasetPolicy(owner="olga"), allow_unreadable=True)


def test_empty_or_missing_folders_are_refused(world):
    (world.tmp / "empty").mkdir()
    with pytest.raises(DatasetError, match="holds no files"):
        world.register(world.olga, "d2", world.tmp / "empty", DatasetPolicy(owner="olga"))
    with pytest.raises(DatasetError, match="not a folder"):
        world.register(world.olga, "d2", world.tmp / "nope", DatasetPolicy(owner="olga"))


def test_bad_dataset_name(world):
    with pytest.raises(InvalidRequest, match="dataset name"):
        world.register(world.olga, "../x", new_folder(world), DatasetPolicy(owner="olga"))


def test_everyone_lists_datasets_and_unknown_names_are_not_found(world):
    assert [d.name for d in world.service.list_datasets(world.rob)] == ["iris"]
    with pytest.raises(NotFound, match="c2d dataset list"):
        world.service.get_dataset(world.rob, "nope")


def test_tokens_never_look_like_a_command_line_option() -> None:
    from jobs.accounts import new_token

    tokens = {new_token() for _ in range(2000)}
    assert len(tokens) == 2000
    assert all(t.startswith("c2d_") and len(t) == 47 for t in tokens)
