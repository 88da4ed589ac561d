"""The Dockerfile checks: what a researcher's Dockerfile may name, and how it is pinned."""

from __future__ import annotations

import pytest

from runner.byo.dockerfile import pinned, read_plan, split_instructions
from runner.errors import ByoInvalid, ByoRefused

ALLOWED = "c2d/python-ml:latest"
BASE_ID = "sha256:" + "ab" * 32


def refs(text: str) -> list[tuple[str, int, str]]:
    return [(u.ref, u.line, u.how) for u in read_plan(text, ALLOWED).uses]


def test_continuations_comments_and_flags_are_read_as_the_builder_reads_them() -> None:
    text = (
        "# syntax=docker/dockerfile:1\n"
        "FROM c2d/python-ml:latest \\\n"
        "  # a comment inside the continuation\n"
        "\n"
        "  AS Build\n"
        "copy --chown=1:1   --from=build a b\n"
    )
    found = split_instructions(text)
    assert [(i.keyword, i.flags, i.rest, i.first_line, i.last_line) for i in found] == [
        ("FROM", (), "c2d/python-ml:latest   AS Build", 2, 5),
        ("COPY", ("--chown=1:1", "--from=build"), "a b", 6, 6),
    ]


def test_escape_directive_changes_the_continuation_character() -> None:
    text = "# escape=`\nFROM c2d/python-ml:latest `\n  AS one\nRUN echo a\\\n"
    found = split_instructions(text)
    assert [(i.keyword, i.rest) for i in found] == [
        ("FROM", "c2d/python-ml:latest   AS one"),
        ("RUN", "echo a\\"),
    ]


def test_multi_stage_names_earlier_stages_and_lists_external_images() -> None:
    text = (
        "ARG X=1\n"
        "FROM c2d/python-ml:latest AS deps\n"
        "RUN true\n"
        "FROM DEPS\n"  # stage names are case-insensitive
        "COPY --from=deps /a /b\n"
        "COPY --from=0 /a /c\n"
        "COPY --from=c2d/debian-python:bookworm /etc/os-release /x\n"
    )
    assert refs(text) == [
        ("c2d/python-ml:latest", 2, "FROM"),
        ("c2d/debian-python:bookworm", 7, "COPY --from"),
    ]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("FROM scratch\n", "scratch"),
        ("ARG B=c2d/python-ml:latest\nFROM $B\n", "$VARIABLE"),
        ("ARG B=latest\nFROM c2d/python-ml:${B}\n", "$VARIABLE"),
        ("FROM --platform=linux/arm64 c2d/python-ml:latest\n", "takes no flags"),
        ("FROM c2d/python-ml:latest\nCOPY --from=$IMG /a /b\n", "without variables"),
        ("FROM c2d/python-ml:latest\nADD https://example.org/x.tgz /x\n", "ADD of a URL"),
        ('FROM c2d/python-ml:latest\nADD ["http://h/x", "/x"]\n', "ADD of a URL"),
        ("FROM c2d/python-ml:latest\nARG U=http://h/x\nADD $U /x\n", "ADD of a URL"),
        ("FROM c2d/python-ml:latest\nONBUILD RUN id\n", "ONBUILD"),
        ("FROM c2d/python-ml:latest\nVOLUME /scratch\n", "VOLUME"),
    ],
)
def test_refused_with_a_reason(text: str, needle: str) -> None:
    with pytest.raises(ByoRefused, match=None) as caught:
        read_plan(text, ALLOWED)
    assert needle in str(caught.value)
    assert caught.value.kind == "not_allowed"


def test_refusals_of_bases_name_the_allowed_ones() -> None:
    with pytest.raises(ByoRefused) as caught:
        read_plan("FROM scratch\n", ALLOWED)
    assert ALLOWED in str(caught.value)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "# only a comment\n",
        "RUN id\nFROM c2d/python-ml:latest\n",
        "FROM a b c d\n",
        "FROM c2d/python-ml:latest AS x\nFROM c2d/python-ml:latest AS x\n",
        "FROM c2d/python-ml:latest\nCOPY --from=1 /a /b\n",  # not an earlier stage
    ],
)
def test_unreadable_dockerfiles_are_invalid(text: str) -> None:
    with pytest.raises(ByoInvalid):
        read_plan(text, ALLOWED)


def test_copy_from_the_current_stage_name_is_not_an_earlier_stage() -> None:
    text = "FROM c2d/python-ml:latest AS me\nCOPY --from=me /a /b\n"
    assert refs(text) == [("c2d/python-ml:latest", 1, "FROM"), ("me", 2, "COPY --from")]


def test_pinning_names_bases_by_id_and_keeps_line_numbers() -> None:
    text = (
        "FROM c2d/python-ml:latest \\\n"
        "   AS deps\n"
        "RUN echo hi\n"
        "FROM deps\n"
        "COPY --chown=1:1 --from=c2d/python-ml:latest /a /b\n"
    )
    plan = read_plan(text, ALLOWED)
    out = pinned(plan, {"c2d/python-ml:latest": BASE_ID})
    assert out.split("\n") == [
        f"FROM {BASE_ID} AS deps",
        "",
        "RUN echo hi",
        "FROM deps",
        f"COPY --chown=1:1 --from={BASE_ID} /a /b",
        "",
    ]
    # The pinned text passes the same checks and names only the ID.
    assert [u.ref for u in read_plan(out, ALLOWED).uses] == [BASE_ID, BASE_ID]
