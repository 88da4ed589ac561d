"""The Dockerfile reader: the engine's own parser, c2d's small dialect on top."""

from __future__ import annotations

import pytest

from runner.errors import ByoInvalid, ByoRefused
from runner.host.images.dockerfile import exec_form, read_plan

ALLOWED = "c2d/python-ml:latest"
BASE = "FROM c2d/python-ml:latest\n"

# The Dockerfile of the attack that made the host fetch a URL before approval: c2d used to read
# the backtick as the escape character (after an unknown directive, Docker does not) and folded
# the ADD into the RUN above it, while the engine saw the ADD.
ATTACK = (
    "# foo=bar\n"
    "# escape=`\n"
    "FROM c2d/python-ml:latest\n"
    "USER root\n"
    "RUN true # `\n"
    "ADD http://127.0.0.1:8999/secret.txt /opt/secret.txt\n"
    "RUN chmod 644 /opt/secret.txt\n"
)


def steps(text: str) -> list[tuple[str, tuple[str, ...], int]]:
    plan = read_plan(text, ALLOWED)
    return [(s.keyword, s.args, s.line) for stage in plan.stages for s in stage.steps]


@pytest.mark.parametrize(
    "text",
    [
        ATTACK,
        ATTACK.replace("# foo=bar\n", "  # foo=bar\n"),  # leading whitespace
        ATTACK.replace("# foo=bar\n", "# syntax=docker/dockerfile:1\n"),
        "\ufeff" + ATTACK,  # a byte-order mark
        ATTACK.replace("\n", "\r\n"),
        ATTACK.replace("# foo=bar\n# escape=`\n", ""),  # no trick at all: ADD itself
        BASE + 'ADD ["http://h/x", "/x"]\n',
        BASE + "ADD local.tar.bz2 /opt/\n",  # the engine would unpack it, uncapped
        BASE + "RUN <<EOF\ncurl http://127.0.0.1:8999/\nEOF\n",
        BASE + "COPY <<EOF /x\ntext\nEOF\n",
    ],
)
def test_every_spelling_of_the_fetch_attack_is_refused(text: str) -> None:
    with pytest.raises(ByoRefused):
        read_plan(text, ALLOWED)


def test_with_the_directive_alone_the_add_is_folded_into_a_comment_as_docker_folds_it() -> None:
    # A real escape directive: the backtick continues the RUN, so the ADD line is part of the
    # shell comment `# ADD http://...`. Docker reads it so too; c2d executes exactly this.
    assert steps(ATTACK.replace("# foo=bar\n", "")) == [
        ("USER", ("root",), 3),
        ("RUN", ("true # ADD http://127.0.0.1:8999/secret.txt /opt/secret.txt",), 4),
        ("RUN", ("chmod 644 /opt/secret.txt",), 6),
    ]


def test_the_escape_directive_on_the_first_line_is_read_as_docker_reads_it() -> None:
    text = "# escape=`\nFROM c2d/python-ml:latest\nRUN echo a `\n  b\nRUN echo c\\\n"
    assert steps(text) == [("RUN", ("echo a   b",), 3), ("RUN", ("echo c\\",), 5)]


def test_an_escape_directive_after_another_line_is_refused_not_guessed() -> None:
    with pytest.raises(ByoRefused, match="line 2: the parser directive `escape`"):
        read_plan("# a comment\n# escape=`\n" + BASE, ALLOWED)


def test_continuations_and_comments_inside_them_are_the_parser_s() -> None:
    text = BASE + "RUN pip install \\\n  # a comment inside the continuation\n\n  mypkg\n"
    assert steps(text) == [("RUN", ("pip install   mypkg",), 2)]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("FROM scratch\n", "scratch"),
        ("FROM c2d/python-ml:${TAG}\n", "$"),
        ("FROM --platform=linux/arm64 c2d/python-ml:latest\n", "--platform"),
        (BASE + "RUN --mount=type=bind,target=/x id\n", "--mount"),
        (BASE + "RUN --network=host id\n", "--network"),
        (BASE + "RUN --security=insecure id\n", "--security"),
        (BASE + "COPY --link a /a\n", "--link"),
        (BASE + "COPY --from=$IMG /a /b\n", "$"),
        (BASE + "COPY $SRC /b\n", "$"),
        (BASE + 'ENV A="x y"\n', '"'),
        (BASE + "WORKDIR $HOME\n", "$"),
        (BASE + "ARG X=1\n", "ARG"),
        (BASE + "ONBUILD RUN id\n", "ONBUILD"),
        (BASE + "VOLUME /scratch\n", "VOLUME"),
        (BASE + "HEALTHCHECK CMD true\n", "HEALTHCHECK"),
        (BASE + "EXPOSE 80\n", "EXPOSE"),
        (BASE + "NOSUCH thing\n", "NOSUCH"),
        (BASE + "COPY ../outside /x\n", "inside the job folder"),
        (BASE + "COPY --from=c2d/other:1 /a* /b/\n", "without wildcards"),
    ],
)
def test_refused_with_a_reason(text: str, needle: str) -> None:
    with pytest.raises(ByoRefused) as caught:
        read_plan(text, ALLOWED)
    assert needle in str(caught.value)
    assert caught.value.kind == "not_allowed"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "# only a comment\n",
        "RUN id\n" + BASE,
        "FROM a b c d\n",
        "FROM c2d/python-ml:latest AS x\nFROM c2d/python-ml:latest AS x\n",
        BASE + "COPY --from=1 /a /b\n",  # not an earlier stage
        BASE + "COPY a b /c\n",  # several sources need a folder destination
        BASE + "COPY --chown=user a /b\n",  # names would be looked up in the image
        BASE + "COPY --chmod=u+x a /b\n",
        BASE + 'CMD ["python3", "x"\n',  # broken JSON, not a shell command
        BASE + "SHELL /bin/bash -c\n",
        BASE + "USER a b\n",
    ],
)
def test_unreadable_dockerfiles_are_invalid(text: str) -> None:
    with pytest.raises(ByoInvalid):
        read_plan(text, ALLOWED)


def test_stages_earlier_stages_and_external_images() -> None:
    text = (
        "FROM c2d/python-ml:latest AS deps\n"
        "RUN true\n"
        "FROM DEPS\n"  # stage names are case-insensitive
        "COPY --from=deps /a /b\n"
        "COPY --from=0 /a /c\n"
        "COPY --from=c2d/debian-python:bookworm /etc/os-release /x\n"
    )
    plan = read_plan(text, ALLOWED)
    assert [(s.base, s.name) for s in plan.stages] == [("c2d/python-ml:latest", "deps"), (0, None)]
    assert [s.source for s in plan.stages[1].steps] == [0, 0, "c2d/debian-python:bookworm"]
    assert [(u.ref, u.line, u.how) for u in plan.uses] == [
        ("c2d/python-ml:latest", 1, "FROM"),
        ("c2d/debian-python:bookworm", 6, "COPY --from"),
    ]
    assert plan.step_count == 6


def test_copy_from_its_own_stage_names_an_image_not_itself() -> None:
    plan = read_plan("FROM c2d/python-ml:latest AS me\nCOPY --from=me /a /b\n", ALLOWED)
    assert [u.ref for u in plan.uses] == ["c2d/python-ml:latest", "me"]


def test_copy_flags_become_numbers() -> None:
    plan = read_plan(BASE + "COPY --chown=1000 --chmod=640 a /b\n", ALLOWED)
    step = plan.stages[0].steps[0]
    assert (step.chown, step.chmod) == ((1000, 1000), 0o640)


def test_commands_in_exec_and_shell_form() -> None:
    plan = read_plan(BASE + 'RUN ["python3", "-c", "print(1)"]\nRUN echo "$HOME"\n', ALLOWED)
    run_json, run_shell = plan.stages[0].steps
    shell = ("/bin/bash", "-c")
    assert exec_form(run_json, shell) == ["python3", "-c", "print(1)"]
    assert exec_form(run_shell, shell) == ["/bin/bash", "-c", 'echo "$HOME"']
    assert run_shell.where == "line 3: RUN"
