"""Reading a researcher's Dockerfile with the engine's own parser, and c2d's rules on top.

The text is parsed by ``dockerfile`` (the official Go parser Docker and BuildKit use), so line
continuations, comments, the escape directive, a byte-order mark and CRLF are read exactly as
Docker reads them. c2d's builder (``runner.host.images.build``) then executes what this module
returns and nothing else: there is no second reader of the file whose reading could differ.

On top of the parser, ``read_plan`` keeps a deliberately small dialect, refusing with the line:

- parser directives other than ``# escape=`` on the first line (``syntax`` would pick another
  frontend, ``check`` other rules; c2d has one reading);
- ``ADD`` (the engine downloads URLs and unpacks archives itself, outside any sandbox: COPY
  files from the job folder instead), ``ONBUILD``, ``VOLUME``, ``HEALTHCHECK``, ``ARG``,
  ``EXPOSE``, ``STOPSIGNAL``, ``MAINTAINER`` and anything unknown;
- heredocs and every flag but ``COPY --from``, ``--chown`` (numeric) and ``--chmod`` (octal):
  no ``--mount``, ``--network``, ``--security``, ``FROM --platform``;
- ``$``, quotes and backslashes outside ``RUN``, ``CMD`` and ``ENTRYPOINT``: values are plain
  words, so nothing is left for variable expansion or quote removal to decide;
- a ``FROM`` or ``COPY --from`` that is neither an earlier stage nor an external image (which
  the builder then requires to be an allowed base present on the host, and pins by ID).
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass, field

import dockerfile

from runner.errors import ByoInvalid, ByoRefused

MAX_DOCKERFILE_BYTES = 1024 * 1024
_DIRECTIVE_RE = re.compile(r"^\s*#\s*([A-Za-z][A-Za-z0-9]*)\s*=")
_STAGE_NAME_RE = re.compile(r"^[a-z][a-z0-9_.-]*$")
_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_IDS_RE = re.compile(r"^([0-9]{1,10})(?::([0-9]{1,10}))?$")
_MODE_RE = re.compile(r"^[0-7]{3,4}$")
_PLAIN_FORBIDDEN = set("$\"'\\`")
_GLOB_CHARS = set("*?[")

REFUSED = {
    "ADD": "ADD is not allowed (the engine would download URLs and unpack archives outside "
    "any sandbox); put the file in the job folder and COPY it",
    "ONBUILD": "ONBUILD is not allowed in job images; remove it",
    "VOLUME": "VOLUME is not allowed: at run time it would give the job a writable folder "
    "outside the sandbox's limits; write to /tmp or /outputs instead",
    "HEALTHCHECK": "HEALTHCHECK is not allowed: jobs are not services; remove it",
    "ARG": "ARG is not allowed: this host passes no build arguments; write the value, or use ENV",
    "EXPOSE": "EXPOSE is not allowed: jobs have no network; remove it",
    "STOPSIGNAL": "STOPSIGNAL is not allowed: the sandbox decides how a job is stopped",
    "MAINTAINER": "MAINTAINER is not allowed (deprecated); use LABEL maintainer=NAME",
}


@dataclass(frozen=True)
class Step:
    """One instruction as c2d will execute it.

    ``args`` are the parser's values, ``json`` whether they were a JSON list (exec form).
    For ``COPY``: ``source`` is the stage index or external image it copies from (None: the
    job folder), ``chown`` the numeric ``uid:gid``, ``chmod`` the mode.
    """

    keyword: str
    args: tuple[str, ...]
    json: bool
    line: int
    original: str
    source: int | str | None = None
    chown: tuple[int, int] | None = None
    chmod: int | None = None

    @property
    def where(self) -> str:
        """How messages name the step: ``line 3: RUN``."""
        return f"line {self.line}: {self.keyword}"


@dataclass(frozen=True)
class Stage:
    """A ``FROM`` and the steps after it. ``base`` is an earlier stage's index or an image."""

    base: int | str
    name: str | None
    line: int
    text: str
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class ImageUse:
    """An image the Dockerfile names that is not one of its own stages; must be allowed."""

    ref: str
    line: int
    how: str  # "FROM" or "COPY --from"


@dataclass(frozen=True)
class DockerfilePlan:
    """What the checks found: the stages with their steps, and the external images used."""

    text: str
    stages: tuple[Stage, ...]
    uses: tuple[ImageUse, ...] = field(default=())

    @property
    def external_refs(self) -> tuple[str, ...]:
        """The external image names, in order of first use, without repeats."""
        return tuple(dict.fromkeys(use.ref for use in self.uses))

    @property
    def step_count(self) -> int:
        """Instructions to execute, ``FROM`` lines included."""
        return sum(1 + len(s.steps) for s in self.stages)


def _check_directives(text: str) -> None:
    """Refuse every parser directive but ``# escape=`` on the very first line."""
    for number, line in enumerate(text.lstrip("\ufeff").splitlines(), start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return
        match = _DIRECTIVE_RE.match(line)
        if match and not (number == 1 and match.group(1).lower() == "escape"):
            raise ByoRefused(
                f"line {number}: the parser directive `{match.group(1)}` is not allowed; only "
                "`# escape=` on the first line is (write other comments without `=`)"
            )


def _plain(step_where: str, values: tuple[str, ...]) -> None:
    for value in values:
        bad = _PLAIN_FORBIDDEN & set(value)
        if bad:
            raise ByoRefused(
                f"{step_where}: {''.join(sorted(bad))} is not allowed here; write plain values "
                "(no variables, quotes or escapes: only RUN, CMD and ENTRYPOINT go to a shell)"
            )


def _flags(cmd: dockerfile.Command, where: str, allowed: tuple[str, ...]) -> dict[str, str]:
    found: dict[str, str] = {}
    for flag in cmd.flags:
        key, eq, value = flag.partition("=")
        name = key.removeprefix("--")
        if name not in allowed or not eq:
            allowed_text = ", ".join(f"--{a}=..." for a in allowed) or "none"
            raise ByoRefused(f"{where}: the flag {key} is not allowed (allowed: {allowed_text})")
        if name in found:
            raise ByoInvalid(f"{where}: {key} is given twice")
        found[name] = value
    return found


def _pairs(cmd: dockerfile.Command, where: str) -> tuple[str, ...]:
    values = tuple(cmd.value)
    if not values or len(values) % 2:
        raise ByoInvalid(f"{where} needs KEY=VALUE pairs")
    _plain(where, values)
    for key in values[::2]:
        if not _KEY_RE.match(key):
            raise ByoInvalid(f"{where}: {key!r} is not a name of letters, digits and _ . -")
    return values


def _command_form(cmd: dockerfile.Command, where: str) -> tuple[str, ...]:
    values = tuple(cmd.value)
    if not values or (len(values) == 1 and not values[0].strip()):
        raise ByoInvalid(f"{where} needs a command")
    if not cmd.json and values[0].lstrip().startswith("["):
        raise ByoInvalid(f"{where}: this looks like a JSON list but is not valid JSON")
    return values


class _Reader:
    """Turns the parser's commands into stages and steps, checking each."""

    def __init__(self, allowed: str) -> None:
        self.hint = f"allowed base images: {allowed}"
        self.stages: list[Stage] = []
        self.names: list[str | None] = []
        self.steps: list[Step] = []
        self.uses: list[ImageUse] = []
        self.current: tuple[int | str, str | None, int, str] | None = None

    def close_stage(self) -> None:
        if self.current is not None:
            base, name, line, text = self.current
            self.stages.append(Stage(base, name, line, text, tuple(self.steps)))
            self.names.append(name)
            self.steps = []

    def image_or_stage(self, ref: str, line: int, how: str, earlier: int) -> int | str:
        """An earlier stage's index (by name or number) or an external image to be allowed."""
        lowered = ref.lower()
        if lowered in self.names[:earlier]:
            return self.names.index(lowered)
        if ref.isdigit():
            if int(ref) >= earlier:
                raise ByoInvalid(f"line {line}: {how} {ref}: there is no earlier stage {ref}")
            return int(ref)
        if lowered == "scratch":
            raise ByoRefused(
                f"line {line}: {how} scratch: images must start from an allowed base; {self.hint}"
            )
        self.uses.append(ImageUse(ref, line, how))
        return ref

    def read(self, cmd: dockerfile.Command) -> None:
        keyword = cmd.cmd.upper()
        where = f"line {cmd.start_line}: {keyword}"
        if cmd.heredocs:
            raise ByoRefused(f"{where}: heredocs (<<) are not allowed; put the text in a file")
        if keyword in REFUSED:
            raise ByoRefused(f"{where}: {REFUSED[keyword]}")
        if keyword == "FROM":
            self.read_from(cmd, where)
            return
        if self.current is None:
            raise ByoInvalid(f"{where} comes before the first FROM; start with FROM <base>")
        reader = {
            "RUN": self.read_run,
            "CMD": self.read_run,
            "ENTRYPOINT": self.read_run,
            "SHELL": self.read_shell,
            "COPY": self.read_copy,
            "ENV": self.read_pairs,
            "LABEL": self.read_pairs,
            "WORKDIR": self.read_workdir,
            "USER": self.read_user,
        }.get(keyword)
        if reader is None:
            raise ByoRefused(f"{where}: {keyword} is not an instruction c2d builds")
        self.steps.append(reader(cmd, where, keyword))

    def read_from(self, cmd: dockerfile.Command, where: str) -> None:
        _flags(cmd, where, ())
        values = tuple(cmd.value)
        if len(values) not in (1, 3) or (len(values) == 3 and values[1].lower() != "as"):
            raise ByoInvalid(f"{where} must read `FROM <image>` or `FROM <image> AS <name>`")
        _plain(where, values)
        name = values[2].lower() if len(values) == 3 else None
        self.close_stage()
        if name is not None and (not _STAGE_NAME_RE.match(name) or name in self.names):
            raise ByoInvalid(
                f"{where}: stage name {name!r} is not a new name of letters and digits"
            )
        base = self.image_or_stage(values[0], cmd.start_line, "FROM", len(self.names))
        self.current = (base, name, cmd.start_line, cmd.original)

    def step(self, cmd: dockerfile.Command, keyword: str, args: tuple[str, ...]) -> Step:
        return Step(keyword, args, bool(cmd.json), cmd.start_line, cmd.original)

    def read_run(self, cmd: dockerfile.Command, where: str, keyword: str) -> Step:
        _flags(cmd, where, ())
        return self.step(cmd, keyword, _command_form(cmd, where))

    def read_shell(self, cmd: dockerfile.Command, where: str, keyword: str) -> Step:
        _flags(cmd, where, ())
        if not cmd.json or not cmd.value:
            raise ByoInvalid(f'{where} must be a JSON list, like SHELL ["/bin/bash", "-c"]')
        return self.step(cmd, keyword, tuple(cmd.value))

    def read_pairs(self, cmd: dockerfile.Command, where: str, keyword: str) -> Step:
        _flags(cmd, where, ())
        return self.step(cmd, keyword, _pairs(cmd, where))

    def read_workdir(self, cmd: dockerfile.Command, where: str, keyword: str) -> Step:
        _flags(cmd, where, ())
        values = tuple(cmd.value)
        if len(values) != 1 or not values[0]:
            raise ByoInvalid(f"{where} takes one folder")
        _plain(where, values)
        return self.step(cmd, keyword, values)

    def read_user(self, cmd: dockerfile.Command, where: str, keyword: str) -> Step:
        _flags(cmd, where, ())
        values = tuple(cmd.value)
        if len(values) != 1 or not re.match(r"^[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)?$", values[0]):
            raise ByoInvalid(f"{where} takes one user[:group] of letters, digits and _ . -")
        return self.step(cmd, keyword, values)

    def read_copy(self, cmd: dockerfile.Command, where: str, keyword: str) -> Step:
        flags = _flags(cmd, where, ("from", "chown", "chmod"))
        values = tuple(cmd.value)
        if len(values) < 2:
            raise ByoInvalid(f"{where} needs at least one source and a destination")
        _plain(where, values + tuple(flags.values()))
        *sources, dest = values
        source: int | str | None = None
        if "from" in flags:
            if not flags["from"]:
                raise ByoInvalid(f"{where}: --from= names no stage")
            source = self.image_or_stage(
                flags["from"], cmd.start_line, "COPY --from", len(self.names)
            )
            if len(sources) != 1 or _GLOB_CHARS & set(sources[0]):
                raise ByoRefused(f"{where} --from copies one path, without wildcards")
        elif (len(sources) > 1 or _GLOB_CHARS & set(sources[0])) and not dest.endswith("/"):
            raise ByoInvalid(f"{where}: copying several files needs a destination ending in /")
        for src in sources:
            norm = posixpath.normpath(src.lstrip("/") or ".")
            if source is None and (norm == ".." or norm.startswith("../")):
                raise ByoRefused(f"{where} {src}: sources must be inside the job folder")
        chown = None
        if "chown" in flags:
            ids = _IDS_RE.match(flags["chown"])
            if ids is None:
                raise ByoInvalid(f"{where}: --chown takes numeric UID[:GID] here, like 1000:1000")
            uid = int(ids.group(1))
            chown = (uid, int(ids.group(2)) if ids.group(2) is not None else uid)
        chmod = None
        if "chmod" in flags:
            if not _MODE_RE.match(flags["chmod"]):
                raise ByoInvalid(f"{where}: --chmod takes an octal mode, like 755")
            chmod = int(flags["chmod"], 8)
        return Step(
            keyword, values, bool(cmd.json), cmd.start_line, cmd.original, source, chown, chmod
        )


def read_plan(text: str, allowed: str) -> DockerfilePlan:
    """Parse and check a Dockerfile's text; list its stages, steps and external images.

    ``allowed`` is how refusals name the allowed bases. Raises ByoInvalid for a Dockerfile that
    cannot be read, ByoRefused (with the line number) for what the policy forbids.
    """
    if len(text.encode()) > MAX_DOCKERFILE_BYTES:
        raise ByoInvalid("the Dockerfile is larger than 1 MiB; keep it short and COPY files in")
    _check_directives(text)
    try:
        commands = dockerfile.parse_string(text)
    except dockerfile.GoParseError as exc:
        if "no instructions" in str(exc):
            raise ByoInvalid("the Dockerfile has no FROM line; start it with FROM <base>") from exc
        raise ByoInvalid(f"the Dockerfile cannot be read: {exc}") from exc
    reader = _Reader(allowed)
    for cmd in commands:
        reader.read(cmd)
    reader.close_stage()
    if not reader.stages:
        raise ByoInvalid(
            f"the Dockerfile has no FROM line; start it with FROM <base> ({reader.hint})"
        )
    return DockerfilePlan(text, tuple(reader.stages), tuple(reader.uses))


def exec_form(step: Step, shell: tuple[str, ...]) -> list[str]:
    """The argv a ``RUN``/``CMD``/``ENTRYPOINT`` step means: its JSON list, or shell + text."""
    return list(step.args) if step.json else [*shell, " ".join(step.args)]


def describe(step: Step) -> str:
    """The step as one line for logs and the image history (at most 200 characters)."""
    text = " ".join(step.original.split())
    return text if len(text) <= 200 else text[:197] + "..."


def dumps(value: object) -> str:
    """Canonical JSON of a step's parts, for cache keys."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
