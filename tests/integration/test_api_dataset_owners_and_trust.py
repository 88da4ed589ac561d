"""The attacks of the security issue, over real HTTP against `c2d server`: each one fails.

1. An owner registers (`c2d dataset add` on the data host) a folder that is, lies inside or
   contains another owner's dataset (or a link to it), or a folder outside the host's dataset
   roots (/etc, the state folder, a link inside a root that leads out): refused, and nothing
   changes in the store or the ledger.
2. A code digest trusted for researcher bob (and his params) approves nothing else by policy:
   not carol's job with the same code, not the owner's own, not bob's with other params until
   the owner trusts any params.
3. Notes and reasons are short plain text: the API answers 422 and records nothing.

The installation's only dataset root is `root/datasets`; its state folder is `root/home`.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobs.bundle import pack
from jobs.spec import JobSpec
from ledger.kinds import ErrorKind
from runner.errors import HTTP_STATUS
from tests.kit.data import counting_job, make_dataset
from tests.kit.installation import Installation, installed
from tests.kit.procs import redis_db_url
from tests.kit.redis import flush_redis

pytestmark = [pytest.mark.docker, pytest.mark.redis]

REDIS_DB = 7


@dataclass
class Answer:
    """A `c2d ... --json` run read like an HTTP answer: its status is the one the API gives
    the error's kind (``runner.errors.HTTP_STATUS``), 201 when it succeeded."""

    done: subprocess.CompletedProcess[str]

    @property
    def status_code(self) -> int:
        if self.done.returncode == 0:
            return 201
        return HTTP_STATUS[ErrorKind(self.json()["error"]["kind"])]

    @property
    def text(self) -> str:
        return f"exit {self.done.returncode}\n{self.done.stdout}\n{self.done.stderr}"

    def json(self) -> Any:
        return json.loads(self.done.stdout)


@dataclass
class World:
    install: Installation
    root: Path
    tokens: dict[str, str]
    names: dict[str, str]
    dataset: str  # olga's, at root/datasets/olga/patients

    @property
    def datasets(self) -> Path:
        return self.root / "datasets"

    def call(self, who: str, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return httpx.request(method, self.install.url + path, headers=headers, timeout=30, **kw)

    def register(self, who: str, name: str, path: Path | str, **policy: Any) -> Answer:
        """`c2d dataset add` on the data host, as ``who`` (the host hashes, signs, sends)."""
        flags: list[str] = []
        if "schema" in policy:
            flags += ["--schema", policy["schema"]]
        for file, columns in (policy.get("public_values") or {}).items():
            flags += [f"--public={c if file == '*' else f'{file}:{c}'}" for c in columns]
        if "owner" in policy:
            flags += ["--owner", policy["owner"]]
        return Answer(self.install.dataset_add(self.tokens[who], name, path, *flags))

    def submit(self, who: str, job_dir: Path, **params: Any) -> dict[str, Any]:
        spec = JobSpec.from_yaml(job_dir / "job.yaml")
        data = json.loads(spec.model_dump_json())
        data["params"] = {**data["params"], **params}
        response = self.call(
            who,
            "POST",
            "/v1/jobs",
            data={"spec": json.dumps(data)},
            files={"bundle": ("bundle.tar", pack(job_dir).data, "application/x-tar")},
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    def ledger_size(self) -> int:
        return self.install.ctx.ledger.size()


@pytest.fixture(scope="module")
def world(tmp_path_factory, redis_url, job_image) -> Iterator[World]:
    url = redis_db_url(redis_url, REDIS_DB)
    flush_redis(url)
    root = tmp_path_factory.mktemp("owners")
    with installed(root, url, dataset_roots=str(root / "datasets")) as install:
        install.start_server()
        users = {
            "olga": install.user("owner", "olga"),
            "otto": install.user("owner", "otto"),
            "bob": install.user("researcher", "bob"),
            "carol": install.user("researcher", "carol"),
        }
        world = World(
            install=install,
            root=root,
            tokens={"admin": install.admin_token, **{k: t for k, (_, t) in users.items()}},
            names={k: u.name for k, (u, _) in users.items()},
            dataset="patients",
        )
        make_dataset(root / "datasets" / "olga" / "patients" / "2024")
        (root / "datasets" / "olga").chmod(0o755)
        registered = world.register(
            "olga",
            "patients",
            root / "datasets" / "olga" / "patients",
            schema="stats",
            public_values={"*": ["y"]},
        )
        assert registered.status_code == 201, registered.text
        yield world
    flush_redis(url)


def _nothing_changed(world: World, refused: str, before: dict[str, Any], size: int) -> None:
    """Olga's dataset is as it was, the refused name exists nowhere, the ledger did not grow."""
    assert world.call("olga", "GET", "/v1/datasets/patients").json() == before
    assert world.install.ctx.store.get_dataset(refused) is None
    assert world.install.ctx.ledger.entries_for(f"dataset:{refused}") == []
    assert world.ledger_size() == size


@pytest.mark.parametrize(
    "where",
    [
        "olga/patients",  # her very folder
        "olga/patients/2024",  # a folder inside it
        "olga",  # a folder that contains it
        "olga/patients/2024/..",  # her folder again, spelled with '..'
        "otto-link",  # a link in the root that leads to her folder
    ],
)
def test_a_second_owner_cannot_register_the_first_owners_folder(world: World, where: str) -> None:
    link = world.datasets / "otto-link"
    if not link.is_symlink():
        link.symlink_to(world.datasets / "olga" / "patients")
    before = world.call("olga", "GET", "/v1/datasets/patients").json()
    size = world.ledger_size()
    path = f"{world.datasets}/{where}"
    for who, extra in (("otto", {}), ("admin", {"owner": world.names["otto"]})):
        refused = world.register(
            who, "stolen", path, schema="stats", public_values={"*": ["x"]}, **extra
        )
        assert refused.status_code == 403, refused.text
        error = refused.json()["error"]
        assert error["kind"] == "not_allowed"
        assert "another owner" in error["message"]
        # Neither the dataset nor its owner is named.
        message = error["message"].replace(path, "PATH")
        assert "patients" not in message
        assert world.names["olga"] not in message
    _nothing_changed(world, "stolen", before, size)


@pytest.mark.parametrize(
    ("where", "status", "why"),
    [
        ("/etc", 403, "not inside a dataset root"),
        ("/", 403, "not inside a dataset root"),
        ("{root}", 403, "not inside a dataset root"),  # the roots' parent
        ("{root}/home", 403, "not inside a dataset root"),  # the state folder
        ("{root}/datasets", 403, "dataset root itself"),
        ("{root}/datasets/otto-etc", 403, "through a link"),  # a link inside that leads out
        ("{root}/datasets/../home/artifacts", 403, "not inside a dataset root"),
        ("datasets/otto", 403, "not inside a dataset root"),  # from the command's folder
    ],
)
def test_a_folder_outside_the_dataset_roots_is_refused(
    world: World, where: str, status: int, why: str
) -> None:
    link = world.datasets / "otto-etc"
    if not link.is_symlink():
        link.symlink_to("/etc")
    before = world.call("olga", "GET", "/v1/datasets/patients").json()
    size = world.ledger_size()
    refused = world.register("otto", "elsewhere", where.format(root=world.root))
    assert refused.status_code == status, refused.text
    assert why in refused.json()["error"]["message"]
    _nothing_changed(world, "elsewhere", before, size)


def test_the_state_folder_is_refused_even_when_a_root_holds_it(tmp_path, redis_url) -> None:
    with installed(tmp_path, redis_db_url(redis_url, REDIS_DB), dataset_roots=str(tmp_path)) as ins:
        ins.start_server()
        _, token = ins.user("owner", "otto")
        for path in (
            ins.settings.home,  # the control plane's, which holds the local host's
            ins.settings.home / "artifacts",
            ins.host_home,
            ins.host_home / "artifacts",
        ):
            refused = Answer(ins.dataset_add(token, "keys", path))
            assert refused.status_code == 403, refused.text
            assert "state folder" in refused.json()["error"]["message"]
        assert ins.ctx.store.list_datasets() == []


def test_the_owner_still_replaces_her_own_dataset_and_another_owner_registers_his(
    world: World,
) -> None:
    again = world.register("olga", "patients", world.datasets / "olga" / "patients", schema="stats")
    assert again.status_code == 201, again.text
    make_dataset(world.datasets / "otto" / "sales")
    (world.datasets / "otto").chmod(0o755)
    his = world.register("otto", "sales", world.datasets / "otto" / "sales")
    assert his.status_code == 201, his.text
    assert his.json()["owner"] == world.names["otto"]


# -- trust ----------------------------------------------------------------------------------


def _stays_pending(world: World, job: dict[str, Any]) -> None:
    assert job["state"] == "pending", job
    assert job["approval"] is None
    assert world.install.entry_types(job["id"]) == ["job.submitted"]


def test_trust_for_bob_approves_nobody_else_and_no_other_params(world: World) -> None:
    job_dir = counting_job(world.root / "job-trust", world.dataset)
    first = world.submit("bob", job_dir)
    trusted = world.call("olga", "POST", f"/v1/jobs/{first['id']}/trust")
    assert trusted.status_code == 200, trusted.text
    doc = trusted.json()
    assert doc["researcher"] == world.names["bob"]
    assert (doc["params_digest"], doc["any_params"]) == (first["params_digest"], False)
    entry = world.install.ctx.ledger.entries_for("dataset:patients")[-1]
    assert entry.type == "dataset.trusted"
    assert entry.body == {
        "code_digest": first["code_digest"],
        "job_id": first["id"],
        "researcher": world.names["bob"],
        "params_digest": first["params_digest"],
    }

    # The code digest is public: carol, and the owner herself, submit the same code.
    carol = world.submit("carol", job_dir)
    assert carol["code_digest"] == first["code_digest"]
    _stays_pending(world, carol)
    own = world.submit("olga", job_dir)
    assert own["code_digest"] == first["code_digest"]
    _stays_pending(world, own)
    # Bob with other params waits too; with the trusted params he is approved by policy.
    other = world.submit("bob", job_dir, sleep=5)
    _stays_pending(world, other)
    same = world.submit("bob", job_dir)
    assert same["state"] == "approved"
    assert same["approval"]["by_policy"] is True
    assert same["approval"]["approver"] == world.names["olga"]

    # Only when the owner says any params do bob's other params pass; carol still waits.
    wide = world.call("olga", "POST", f"/v1/jobs/{first['id']}/trust", json={"any_params": True})
    assert wide.status_code == 200, wide.text
    assert (wide.json()["any_params"], wide.json()["params_digest"]) == (True, None)
    last = world.install.ctx.ledger.entries_for("dataset:patients")[-1]
    assert last.body["params_digest"] == "any"
    assert world.submit("bob", job_dir, sleep=7)["state"] == "approved"
    _stays_pending(world, world.submit("carol", job_dir, sleep=7))
    _stays_pending(world, world.submit("olga", job_dir, sleep=7))


def test_the_owners_own_job_cannot_be_trusted(world: World) -> None:
    own = world.submit("olga", counting_job(world.root / "job-own", world.dataset))
    size = world.ledger_size()
    for who in ("olga", "admin"):
        refused = world.call(who, "POST", f"/v1/jobs/{own['id']}/trust", json={"any_params": True})
        assert refused.status_code == 403, refused.text
    assert world.ledger_size() == size
    bad_body = world.call("olga", "POST", f"/v1/jobs/{own['id']}/trust", json={"everyone": True})
    assert bad_body.status_code == 422


# -- notes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "field"),
    [("approve", "note"), ("reject", "reason"), ("cancel", "reason")],
)
@pytest.mark.parametrize("text", ["x" * 2001, "ok\x1b[2Jfine", "a\u202eb"])
def test_long_or_control_character_notes_are_refused_with_422(
    world: World, route: str, field: str, text: str
) -> None:
    # Carol: nobody trusted her code, so the job is pending.
    folder = counting_job(world.root / f"job-note-{route}-{len(text)}", world.dataset)
    job = world.submit("carol", folder)
    size = world.ledger_size()
    who = "carol" if route == "cancel" else "olga"
    refused = world.call(who, "POST", f"/v1/jobs/{job['id']}/{route}", json={field: text})
    assert refused.status_code == 422, refused.text
    assert field in refused.json()["error"]["message"]
    assert world.ledger_size() == size
    assert world.call("carol", "GET", f"/v1/jobs/{job['id']}").json()["state"] == "pending"
