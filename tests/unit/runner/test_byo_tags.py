"""Which tags a load moved, and putting them back (an in-memory engine; the real one is in
tests/integration/test_byo_archive.py)."""

from __future__ import annotations

from typing import Any

import docker.errors

from runner.host.images import tags
from runner.host.images.policy import AllowedBase

BASE = "sha256:" + "b" * 64
LOADED = "sha256:" + "1" * 64
OTHER = "sha256:" + "c" * 64
PIN = "c2d/byo:" + "1" * 64


class Api:
    """The few Engine API calls the tag check makes, over a dict of tag -> image ID."""

    def __init__(self, refs: dict[str, str]) -> None:
        self.refs = dict(refs)

    def images(self) -> list[dict[str, Any]]:
        by_id: dict[str, list[str]] = {}
        for ref, image_id in self.refs.items():
            by_id.setdefault(image_id, []).append(ref)
        return [{"Id": image_id, "RepoTags": refs} for image_id, refs in by_id.items()]

    def inspect_image(self, ref: str) -> dict[str, Any]:
        if ref in self.refs:
            return {"Id": self.refs[ref]}
        if f"{ref}:latest" in self.refs:
            return {"Id": self.refs[f"{ref}:latest"]}
        raise docker.errors.ImageNotFound(ref)

    def tag(self, image_id: str, repo: str, tag: str) -> bool:
        self.refs[f"{repo}:{tag}"] = image_id
        return True

    def remove_image(self, ref: str, force: bool, noprune: bool) -> None:
        del self.refs[ref]


class Client:
    def __init__(self, refs: dict[str, str]) -> None:
        self.api = Api(refs)


BEFORE = {
    "c2d/python-ml:latest": BASE,
    "c2d/byo:" + "c" * 64: OTHER,
    "someone/else:1": OTHER,
}
BASES = (AllowedBase("c2d/python-ml", BASE, ("sha256:" + "d" * 64,), 1),)


def moved_after(after: dict[str, str]) -> dict[str, str | None]:
    client = Client(after)
    assert tags.snapshot(client) == after
    return tags.moved_tags(client, BEFORE, BASES, LOADED)


def test_a_load_that_tags_nothing_moved_nothing() -> None:
    assert moved_after(BEFORE) == {}


def test_other_peoples_tags_and_c2d_s_own_pin_are_no_reason_to_refuse() -> None:
    after = {**BEFORE, "someone/else:1": BASE, "someone/new:2": OTHER, PIN: LOADED}
    del after["c2d/byo:" + "c" * 64]  # the reconciler removed it meanwhile
    assert moved_after(after) == {}


def test_an_allowed_base_moved_to_the_loaded_image_is_found() -> None:
    assert moved_after({**BEFORE, "c2d/python-ml:latest": LOADED}) == {"c2d/python-ml:latest": BASE}


def test_a_c2d_tag_moved_anywhere_and_any_new_tag_on_the_loaded_image_are_found() -> None:
    after = {**BEFORE, "c2d/byo:" + "c" * 64: BASE, "someone/new:2": LOADED}
    assert moved_after(after) == {"c2d/byo:" + "c" * 64: OTHER, "someone/new:2": None}


def test_an_allowed_base_that_vanished_is_found() -> None:
    after = dict(BEFORE)
    del after["c2d/python-ml:latest"]
    assert moved_after(after) == {"c2d/python-ml:latest": BASE}


def test_put_back_restores_moved_tags_and_removes_new_ones() -> None:
    client = Client({**BEFORE, "c2d/python-ml:latest": LOADED, "someone/new:2": LOADED})
    moved = tags.moved_tags(client, BEFORE, BASES, LOADED)
    tags.put_back(client, moved)
    assert client.api.refs == BEFORE
    assert "c2d/python-ml:latest (was sha256:bbbbbbbbbbbb)" in tags.describe(moved)
