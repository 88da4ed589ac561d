"""Reading a researcher's Dockerfile the way Docker's classic builder will, before it runs.

``read_plan`` splits the text into instructions exactly as far as the checks need (parser
directives, comments, line continuations with the file's escape character, leading ``--flags``)
and refuses what would let the build reach past the host's policy:

- a ``FROM`` or ``COPY --from`` naming an image: it must be an earlier stage or, once resolved on
  the host (``build`` does that), an allowed base; ``FROM scratch``, ``FROM --platform`` and any
  ``$VARIABLE`` in the name are refused, since a variable could name anything at build time;
- ``ADD`` of a URL: the engine itself would download it, outside the build's network sandbox;
- ``ONBUILD`` (triggers run later, in whatever uses the stage) and ``VOLUME`` (at run time Docker
  would mount a writable, uncapped volume there, past the sandbox's read-only root).

``pinned`` rewrites the checked text so every external image is named by the ID it was resolved
to, so what the engine builds on is exactly what was checked, even if a tag moves meanwhile.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from runner.errors import ByoInvalid, ByoRefused

MAX_DOCKERFILE_BYTES = 1024 * 1024
_DIRECTIVE_RE = re.compile(r"^#\s*([A-Za-z][A-Za-z0-9]*)\s*=\s*(.*?)\s*$")
_STAGE_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
_URL_RE = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*://|git@)")


@dataclass(frozen=True)
class Instruction:
    """One logical instruction: its keyword (upper case), leading flags and the rest, verbatim."""

    keyword: str
    flags: tuple[str, ...]
    rest: str
    first_line: int
    last_line: int


@dataclass(frozen=True)
class ImageUse:
    """An image the Dockerfile names that is not one of its own stages; must be allowed."""

    ref: str
    line: int
    how: str  # "FROM" or "COPY --from"


@dataclass(frozen=True)
class DockerfilePlan:
    """What the checks found: the instructions, the stage names, the external images used."""

    text: str
    instructions: tuple[Instruction, ...]
    stages: tuple[str | None, ...]
    uses: tuple[ImageUse, ...] = field(default=())

    @property
    def external_refs(self) -> tuple[str, ...]:
        """The external image names, in order of first use, without repeats."""
        return tuple(dict.fromkeys(use.ref for use in self.uses))


def _escape_of(lines: list[str]) -> tuple[str, int]:
    """The escape character the parser directives set, and how many leading lines they take."""
    escape, n = "\\", 0
    for line in lines:
        match = _DIRECTIVE_RE.match(line)
        if not match:
            break
        if match.group(1).lower() == "escape":
            if match.group(2) not in ("\\", "`"):
                raise ByoInvalid(f"line {n + 1}: the escape directive must be \\ or `")
            escape = match.group(2)
        n += 1
    return escape, n


def _first_word(text: str) -> tuple[str, str]:
    """``text``'s first word and the rest, both without surrounding whitespace."""
    parts = text.strip().split(None, 1)
    return (parts[0], parts[1]) if len(parts) == 2 else ((parts or [""])[0], "")


def split_instructions(text: str) -> list[Instruction]:
    """Split a Dockerfile into logical instructions (comments and blank lines dropped)."""
    lines = [line.rstrip("\r") for line in text.split("\n")]
    escape, i = _escape_of(lines)
    continued = re.compile(re.escape(escape) + r"[ \t]*$")
    found: list[Instruction] = []
    while i < len(lines):
        first = i
        stripped = lines[i].strip()
        i += 1
        if not stripped or stripped.startswith("#"):
            continue
        more = bool(continued.search(lines[first]))
        logical = continued.sub("", lines[first])
        while more and i < len(lines):
            nxt = lines[i]
            i += 1
            if nxt.lstrip().startswith("#") or not nxt.strip():
                continue
            more = bool(continued.search(nxt))
            logical += continued.sub("", nxt)
        keyword, rest = _first_word(logical)
        flags: list[str] = []
        while rest.startswith("--"):
            token, rest = _first_word(rest)
            flags.append(token)
        found.append(Instruction(keyword.upper(), tuple(flags), rest, first + 1, i))
    return found


def _flag(flags: tuple[str, ...], name: str) -> str | None:
    for flag in flags:
        key, eq, value = flag.partition("=")
        if key == f"--{name}":
            return value if eq else ""
    return None


def _add_sources(rest: str) -> list[str]:
    if rest.startswith("["):
        try:
            args = json.loads(rest)
        except json.JSONDecodeError:
            args = rest.split()
    else:
        args = rest.split()
    return [str(a) for a in args[:-1]]


def read_plan(text: str, allowed: str) -> DockerfilePlan:
    """Check a Dockerfile's text and list the external images it uses.

    ``allowed`` is how refusals name the allowed bases. Raises ByoInvalid for a Dockerfile that
    cannot be read, ByoRefused (with the line number) for what the policy forbids.
    """
    if len(text.encode()) > MAX_DOCKERFILE_BYTES:
        raise ByoInvalid("the Dockerfile is larger than 1 MiB; keep it short and COPY files in")
    instructions = split_instructions(text)
    stages: list[str | None] = []
    uses: list[ImageUse] = []
    hint = f"allowed base images: {allowed}"
    for ins in instructions:
        where = f"line {ins.first_line}: {ins.keyword}"
        if not stages and ins.keyword not in ("FROM", "ARG"):
            raise ByoInvalid(f"{where} comes before the first FROM; start with FROM <base>")
        if ins.keyword == "FROM":
            stages.append(_from(ins, stages, uses, where, hint))
        elif ins.keyword == "COPY":
            source = _flag(ins.flags, "from")
            if source is not None:
                _copy_from(source, ins, stages, uses, where, hint)
        elif ins.keyword == "ADD":
            for src in _add_sources(ins.rest):
                if _URL_RE.match(src) or "$" in src:
                    raise ByoRefused(
                        f"{where} {src}: ADD of a URL (or of a $VARIABLE that could be one) is "
                        "not allowed: the Docker engine would download it outside the build's "
                        "no-network sandbox; put the file in the job folder and COPY it"
                    )
        elif ins.keyword == "ONBUILD":
            raise ByoRefused(f"{where}: ONBUILD is not allowed in job images; remove it")
        elif ins.keyword == "VOLUME":
            raise ByoRefused(
                f"{where}: VOLUME is not allowed: at run time it would give the job a writable "
                "folder outside the sandbox's limits; write to /tmp or /outputs instead"
            )
    if not stages:
        raise ByoInvalid(f"the Dockerfile has no FROM line; start it with FROM <base> ({hint})")
    return DockerfilePlan(text, tuple(instructions), tuple(stages), tuple(uses))


def _from(
    ins: Instruction, stages: list[str | None], uses: list[ImageUse], where: str, hint: str
) -> str | None:
    if ins.flags:
        raise ByoRefused(f"{where} {' '.join(ins.flags)}: FROM takes no flags here; {hint}")
    args = ins.rest.split()
    if len(args) not in (1, 3) or (len(args) == 3 and args[1].lower() != "as"):
        raise ByoInvalid(f"{where} must read `FROM <image>` or `FROM <image> AS <name>`")
    ref, name = args[0], (args[2].lower() if len(args) == 3 else None)
    if "$" in ins.rest:
        raise ByoRefused(
            f"{where} {ins.rest}: a FROM with a $VARIABLE is not allowed (it could name any "
            f"image when the build runs); name the base itself; {hint}"
        )
    if name is not None and (not _STAGE_NAME_RE.match(name) or name in stages):
        raise ByoInvalid(f"{where}: stage name {name!r} is not a new name of letters and digits")
    if ref.lower() == "scratch":
        raise ByoRefused(f"{where} scratch: images must start from an allowed base; {hint}")
    if ref.lower() not in stages:
        uses.append(ImageUse(ref, ins.first_line, "FROM"))
    return name


def _copy_from(
    source: str,
    ins: Instruction,
    stages: list[str | None],
    uses: list[ImageUse],
    where: str,
    hint: str,
) -> None:
    if "$" in source or not source:
        raise ByoRefused(
            f"{where} --from={source}: name an earlier stage or an allowed base, "
            f"without variables; {hint}"
        )
    if source.isdigit():
        if int(source) >= len(stages) - 1:
            raise ByoInvalid(f"{where} --from={source}: there is no earlier stage {source}")
        return
    if source.lower() not in stages[:-1]:
        uses.append(ImageUse(source, ins.first_line, "COPY --from"))


def pinned(plan: DockerfilePlan, ids: dict[str, str]) -> str:
    """The Dockerfile with every external image named by its ID from ``ids`` (ref -> ID).

    Each rewritten instruction goes on its first line and its continuation lines become blank,
    so line numbers in the engine's messages still match the researcher's file.
    """
    lines = plan.text.split("\n")
    external = {use.line: ids[use.ref] for use in plan.uses}
    for ins in plan.instructions:
        image_id = external.get(ins.first_line)
        if image_id is None:
            continue
        if ins.keyword == "FROM":
            args = ins.rest.split()
            new = f"FROM {image_id}" + (f" AS {args[2]}" if len(args) == 3 else "")
        else:
            flags = [f"--from={image_id}" if f.startswith("--from=") else f for f in ins.flags]
            new = " ".join(["COPY", *flags, ins.rest])
        lines[ins.first_line - 1] = new
        for n in range(ins.first_line, ins.last_line):
            lines[n] = ""
    return "\n".join(lines)
