"""``JobSpec``: what a researcher asks to run, read from ``job.yaml``.

Every way in (``from_yaml``, ``parse_yaml``, ``from_data``) turns YAML and validation problems
into one ``SpecError`` whose message names the file, the field and what is allowed.
"""

from __future__ import annotations

import difflib
import shlex
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import rfc8785
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from jobs.errors import SpecError
from jobs.fields import (
    FROZEN,
    NAME_HELP,
    SCHEMA_VERSION,
    Bytes,
    Cpus,
    Name,
    RelativePattern,
    Seconds,
    duration_at_least,
    size_at_least,
)
from jobs.units import DURATION_HELP, SIZE_HELP, format_duration, format_size

METRICS_FILE = "metrics.json"
"""Always collected from ``/outputs``, whether declared or not."""

GiB = 1024**3
MiB = 1024**2


class Resources(BaseModel):
    """What a job may use; sizes are bytes and the timeout is seconds once parsed."""

    model_config = FROZEN

    cpus: Cpus = 1.0
    memory: Annotated[Bytes, size_at_least(16 * MiB)] = 1 * GiB
    timeout: Annotated[Seconds, duration_at_least(1)] = 600
    outputs: Annotated[Bytes, size_at_least(1024)] = 100 * MiB

    def human(self) -> dict[str, str]:
        """The same values as people write them (``{"memory": "1GiB", ...}``)."""
        return {
            "cpus": f"{self.cpus:g}",
            "memory": format_size(self.memory),
            "timeout": format_duration(self.timeout),
            "outputs": format_size(self.outputs),
        }


DEFAULT_ENVIRONMENT = "python-ml"


class ImageBuild(BaseModel):
    """``image: {build: Dockerfile}``: the job runs in an image built from its own Dockerfile.

    ``build`` is the Dockerfile's path inside the job folder; the data host builds it at
    submission with no network, only from a base it allows.
    """

    model_config = FROZEN

    build: RelativePattern = Field(min_length=1)


def _json_object(value: dict[str, Any]) -> dict[str, Any]:
    try:
        rfc8785.dumps(value)
    except Exception as exc:  # rfc8785 raises several types; all mean "not plain JSON"
        raise ValueError(
            f"must be plain JSON (strings, finite numbers, booleans, null, lists, objects): {exc}"
        ) from exc
    return value


def _split_command(value: Any) -> Any:
    """``command: python3 train.py --fast`` is split as a POSIX shell splits it (quotes kept
    together, no expansion: nothing runs a shell); a list is taken as it is."""
    if not isinstance(value, str):
        return value
    try:
        return shlex.split(value)
    except ValueError as exc:  # an unclosed quote
        raise ValueError(f"cannot be split like a shell command line: {exc}") from exc


class JobSpec(BaseModel):
    """A validated job spec. Frozen; build a changed copy with ``with_overrides``."""

    model_config = FROZEN

    schema_version: Literal[1] = SCHEMA_VERSION
    name: Name
    environment: Name = DEFAULT_ENVIRONMENT
    image: ImageBuild | None = None
    command: Annotated[
        list[Annotated[str, Field(min_length=1)]],
        BeforeValidator(_split_command),
        Field(min_length=1),
    ]
    dataset: Name | None = None
    params: Annotated[dict[str, Any], AfterValidator(_json_object)] = Field(default_factory=dict)
    resources: Resources = Field(default_factory=Resources)
    outputs: list[RelativePattern] = Field(default_factory=list)

    @field_validator("outputs")
    @classmethod
    def _unique_outputs(cls, value: list[str]) -> list[str]:
        duplicates = sorted({p for p in value if value.count(p) > 1})
        if duplicates:
            raise ValueError(f"lists {', '.join(duplicates)} more than once")
        return value

    @model_validator(mode="after")
    def _one_image_source(self) -> JobSpec:
        if self.image is not None and self.environment != DEFAULT_ENVIRONMENT:
            raise ValueError(
                "set either `image: {build: Dockerfile}` or `environment:`, not both; an image "
                "built from a Dockerfile starts FROM an allowed base instead of an environment"
            )
        return self

    def output_patterns(self) -> list[str]:
        """The declared outputs plus ``metrics.json``, which is always collected."""
        return [*self.outputs, *([] if METRICS_FILE in self.outputs else [METRICS_FILE])]

    def with_overrides(
        self, *, dataset: str | None = None, params: dict[str, Any] | None = None
    ) -> JobSpec:
        """A validated copy with the dataset replaced and ``params`` merged over the spec's."""
        data = self.model_dump()
        if dataset is not None:
            data["dataset"] = dataset
        if params:
            data["params"] = {**data["params"], **params}
        return JobSpec.from_data(data, source="command line overrides")

    @classmethod
    def from_yaml(cls, path: Path) -> JobSpec:
        """Read and validate ``path`` (a ``job.yaml``)."""
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise SpecError(
                f"{path}: no such file; a job folder needs a job.yaml (name, command, ...)",
                file=str(path),
            ) from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise SpecError(f"{path}: cannot read: {exc}", file=str(path)) from exc
        return cls.parse_yaml(text, source=str(path))

    @classmethod
    def parse_yaml(cls, text: str, source: str = "job.yaml") -> JobSpec:
        """Validate YAML text; ``source`` names the file in error messages."""
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
            problem = getattr(exc, "problem", None) or str(exc)
            raise SpecError(f"{where}: not valid YAML: {problem}", file=source) from exc
        if not isinstance(data, dict):
            raise SpecError(
                f"{source}: expected a mapping of fields (name, command, ...), "
                f"got {type(data).__name__}",
                file=source,
                allowed=_fields_help(cls),
            )
        return cls.from_data(data, source=source)

    @classmethod
    def from_data(cls, data: Any, source: str = "job spec") -> JobSpec:
        """Validate already-parsed data (for example JSON sent by the CLI)."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise spec_error(exc, source) from exc


_FIELD_HELP = {
    "name": NAME_HELP,
    "environment": NAME_HELP + " naming an environment image (`c2d env list`)",
    "image": "{build: PATH}, the Dockerfile's path in the job folder",
    "image.build": "the Dockerfile's path relative to the job folder, without '..'",
    "dataset": NAME_HELP + " naming a registered dataset (`c2d dataset list`)",
    "command": "a non-empty list of strings, like [python3, train.py], or one line split "
    "like a shell's, like `python3 train.py --fast`",
    "params": "a JSON object of parameters",
    "resources.cpus": "a number of CPUs above 0, like 0.5 or 2",
    "resources.memory": SIZE_HELP + ", at least 16MiB",
    "resources.timeout": DURATION_HELP,
    "resources.outputs": SIZE_HELP + ", at least 1KiB",
    "outputs": "a list of file names or globs relative to /outputs, without '..'",
    "schema_version": "1",
}


def _fields_help(model: type[BaseModel]) -> str:
    return "fields " + ", ".join(model.model_fields)


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model whose fields sit at ``loc`` (for 'unknown field' errors)."""
    model: type[BaseModel] = JobSpec
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field else None
        # An optional sub-model (``ImageBuild | None``) is looked into like a plain one.
        members = [a for a in get_args(annotation) if isinstance(a, type)]
        annotation = next((a for a in members if issubclass(a, BaseModel)), annotation)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def _did_you_mean(name: str, model: type[BaseModel] | None) -> str:
    """`; did you mean `outputs`?` for a field name one typo away from a known one."""
    if model is None:
        return ""
    close = difflib.get_close_matches(name, list(model.model_fields), n=1, cutoff=0.6)
    return f"; did you mean `{close[0]}`?" if close else ""


def _dotted(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else ("." if text else "") + str(part)
    return text


def _short_repr(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def spec_error(exc: ValidationError, source: str) -> SpecError:
    """Turn a pydantic ``ValidationError`` into one readable ``SpecError``."""
    lines = []
    first_field = first_allowed = None
    for err in exc.errors():
        loc = tuple(err["loc"])
        field = _dotted(loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            parent = _model_at(loc[:-1])
            allowed = _fields_help(parent) if parent else "no extra fields"
            message = "unknown field" + _did_you_mean(str(loc[-1]) if loc else "", parent)
        else:
            key = ".".join(str(p) for p in loc if not isinstance(p, int))
            allowed = _FIELD_HELP.get(key, "")
            message = str(err["msg"]).removeprefix("Value error, ")
            shown = _short_repr(err.get("input"))
            if loc and err["type"] != "missing" and "input" in err and shown not in message:
                message += f", got {shown}"
        lines.append(f"  {field}: {message}" + (f" (allowed: {allowed})" if allowed else ""))
        if first_field is None:
            first_field, first_allowed = field, allowed
    return SpecError(
        f"{source} is not a valid job spec:\n" + "\n".join(lines),
        file=source,
        field=first_field,
        allowed=first_allowed,
    )
