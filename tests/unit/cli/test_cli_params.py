"""`--param KEY=VALUE`: JSON when it parses, a string otherwise, and clear refusals."""

from __future__ import annotations

import pytest

from runner.cli.options import parse_params


def test_values_are_json_when_they_parse() -> None:
    got = parse_params(
        ["n=100", "rate=0.1", "flag=true", "none=null", "cols=[1,2]", 'opts={"a":1}']
    )
    assert got == {
        "n": 100,
        "rate": 0.1,
        "flag": True,
        "none": None,
        "cols": [1, 2],
        "opts": {"a": 1},
    }


def test_other_values_are_strings_exactly_as_typed() -> None:
    assert parse_params(["name=forest", "id=007", "expr=a=b", "empty="]) == {
        "name": "forest",
        "id": "007",
        "expr": "a=b",
        "empty": "",
    }


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["novalue"], "not KEY=VALUE"),
        (["=1"], "not KEY=VALUE"),
        (["a=1", "a=2"], "more than once"),
    ],
)
def test_bad_params_are_refused(items: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_params(items)
