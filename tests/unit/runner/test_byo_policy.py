"""The policy object and the layer-chain rule that decides which base an image extends."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from runner.host.images.policy import (
    DEFAULT_BASE,
    AllowedBase,
    ByoPolicy,
    base_of,
    is_reference,
    pin_tag,
)


def layer(n: int) -> str:
    return f"sha256:{n:064x}"


DEBIAN = AllowedBase("c2d/debian-python:bookworm", "sha256:" + "d" * 64, (layer(1),), 10)
ML = AllowedBase(DEFAULT_BASE, "sha256:" + "e" * 64, (layer(1), layer(2), layer(3)), 20)


def test_default_allows_the_default_environment_only() -> None:
    assert ByoPolicy().allowed_bases == ("c2d/python-ml:latest",)


@pytest.mark.parametrize(
    "bases",
    [(), ("$BASE",), ("../containers/x",), ("c2d/python-ml:latest?x=1",), ("a//b",)],
)
def test_bases_must_be_image_names_or_ids(bases: tuple[str, ...]) -> None:
    with pytest.raises(ValidationError):
        ByoPolicy(allowed_bases=bases)


def test_caps_must_be_positive_and_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError):
        ByoPolicy(max_build_s=0)
    with pytest.raises(ValidationError):
        ByoPolicy(max_layers=500)  # the engine itself stops at 127
    with pytest.raises(ValidationError):
        ByoPolicy(allow_network=True)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "ref",
    [
        "c2d/python-ml:latest",
        "python",
        "registry.local:5000/team/img:v1.2",
        "img@sha256:" + "a" * 64,
        "sha256:" + "a" * 64,
        "cfafc30c766b",
    ],
)
def test_references_that_name_local_images(ref: str) -> None:
    assert is_reference(ref)


@pytest.mark.parametrize("ref", ["", "${X}", "UPPER/case", "a b", "a/../b", "-x", "x:"])
def test_strings_that_are_not_references(ref: str) -> None:
    assert not is_reference(ref)


def test_an_image_extends_the_longest_allowed_chain_it_starts_with() -> None:
    chain = [layer(1), layer(2), layer(3), layer(9)]
    assert base_of(chain, [DEBIAN, ML]) is ML
    assert base_of([layer(1), layer(7)], [DEBIAN, ML]) is DEBIAN
    assert base_of([layer(2), layer(1)], [DEBIAN, ML]) is None
    assert base_of(ML.diff_ids, [ML]) is ML  # the base itself, unchanged


def test_a_base_without_layers_never_matches() -> None:
    empty = AllowedBase("empty", "sha256:" + "f" * 64, (), 0)
    assert base_of([layer(1)], [empty]) is None


def test_pin_tag_uses_the_whole_id() -> None:
    assert pin_tag("sha256:" + "a" * 64) == ("c2d/byo", "a" * 64)
    with pytest.raises(ValueError, match="full image ID"):
        pin_tag("abc")
