"""Field types shared by the c2d models, each validating and explaining what it allows."""

from __future__ import annotations

import math
from typing import Annotated, Final

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    GetJsonSchemaHandler,
    StringConstraints,
)
from pydantic.json_schema import JsonSchemaValue, WithJsonSchema
from pydantic_core import CoreSchema

from jobs.safe_text import MAX_NOTE, escape
from jobs.units import format_duration, format_size, parse_duration, parse_size

SCHEMA_VERSION: Final = 1
"""Version of every stored or sent model; bump it with a migration when a model changes shape."""

FROZEN = ConfigDict(frozen=True, extra="forbid")

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
NAME_HELP = "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
"""A name for a user, dataset, job, environment or data host."""


def _whole(value: object) -> object:
    return int(value) if isinstance(value, float) and value.is_integer() else value


WHOLE = BeforeValidator(_whole)
"""Takes ``5.0`` as ``5``; after any bounds in an ``Annotated``, so the JSON schema states them."""

Whole = Annotated[int, WHOLE]
"""An integer as JSON Schema has it: ``5`` or ``5.0``, never ``"5"`` nor ``true``, even in a
strict model (the API's request bodies are strict: they hold what the document says)."""

GivenName = Annotated[
    str, WithJsonSchema({"type": "string", "pattern": NAME_PATTERN, "description": NAME_HELP})
]
"""A name as a request carries it, which the service checks (``NAME_PATTERN``) and refuses in
its own words; the JSON schema (the API's document) states the rule."""


def _size(value: object) -> int:
    return parse_size(value)  # type: ignore[arg-type]  # parse_size explains wrong types


def _duration(value: object) -> int:
    return parse_duration(value)  # type: ignore[arg-type]


Bytes = Annotated[int, BeforeValidator(_size)]
"""A size in bytes, given as ``512MiB``, ``1GiB``, ``100MB`` or a plain number."""

Seconds = Annotated[int, BeforeValidator(_duration)]
"""A duration in whole seconds, given as ``90s``, ``10m``, ``1h30m`` or a plain number."""


def size_at_least(minimum: int) -> AfterValidator:
    """A validator refusing sizes below ``minimum``, with the bound in human units."""

    def check(value: int) -> int:
        if value < minimum:
            raise ValueError(f"must be at least {format_size(minimum)}, got {format_size(value)}")
        return value

    return AfterValidator(check)


def duration_at_least(minimum: int) -> AfterValidator:
    """A validator refusing durations below ``minimum``, with the bound in human units."""

    def check(value: int) -> int:
        if value < minimum:
            raise ValueError(
                f"must be at least {format_duration(minimum)}, got {format_duration(value)}"
            )
        return value

    return AfterValidator(check)


def _positive_cpus(value: float) -> float:
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"must be a number of CPUs above 0 (like 0.5 or 2), got {value}")
    return value


Cpus = Annotated[float, AfterValidator(_positive_cpus)]
"""A positive, finite number of CPUs (fractions allowed)."""


def check_relative_pattern(pattern: str) -> str:
    """Accept a relative path or glob that cannot leave its folder; raise ``ValueError``."""
    if not pattern or pattern != pattern.strip():
        raise ValueError(f"must be a non-empty name without surrounding spaces, got {pattern!r}")
    if "\x00" in pattern or "\\" in pattern:
        raise ValueError(f"must not contain NUL or backslash, got {pattern!r}")
    if pattern.startswith("/"):
        raise ValueError(f"must be relative to /outputs, not absolute, got {pattern!r}")
    parts = pattern.split("/")
    if ".." in parts:
        raise ValueError(f"must not contain '..', got {pattern!r}")
    if any(part in ("", ".") for part in parts):
        raise ValueError(f"must not contain empty or '.' path parts, got {pattern!r}")
    return pattern


_PART = r"(?!\.\.?(?:/|$))[^/\\\x00]+"
RELATIVE_PATTERN = rf"^(?!\s)(?![\s\S]*\s$){_PART}(?:/{_PART})*$"
"""``check_relative_pattern`` as a regular expression, for the JSON schema (the API's
document): no surrounding space, parts without NUL or backslash, none empty, ``.`` or ``..``."""

RelativePattern = Annotated[
    str,
    AfterValidator(check_relative_pattern),
    WithJsonSchema({"type": "string", "minLength": 1, "pattern": RELATIVE_PATTERN}),
]
"""A name or glob relative to a folder: no absolute paths, no ``..``."""


"""Most characters of a note or reason a person writes (approve, reject, cancel)."""


def check_note(text: str) -> str:
    """Accept a note or reason of at most ``MAX_NOTE`` characters holding nothing that
    ``jobs.safe_text`` would escape to show it (control, format and invisible characters:
    escape sequences, bidi overrides, zero-width characters), newlines and tabs apart; such a
    note reads differently on a screen than it stands in the ledger. Raise ``ValueError``."""
    if len(text) > MAX_NOTE:
        raise ValueError(f"must be at most {MAX_NOTE} characters (got {len(text)}); shorten it")
    bad = sorted({c for c in text if escape(c, multiline=True) != c})
    if bad:
        raise ValueError(
            "must hold no control, format or invisible characters other than newline and tab "
            "(got " + ", ".join(f"U+{ord(c):04X}" for c in bad) + "); remove them"
        )
    return text


NOTE_FORMAT = "c2d-note"
"""The JSON-schema ``format`` of a note: ``check_note``'s rule, which no regular expression
states at a size a client could use (every unassigned and invisible code point)."""
REASON_FORMAT = "c2d-reason"
"""A note that must hold something other than spaces, tabs and newlines."""


class _NoteSchema:
    """States ``check_note``'s rule in the JSON schema (the API's document): at most
    ``MAX_NOTE`` characters, of the format ``NOTE_FORMAT`` (or ``REASON_FORMAT``, at least one
    that is not a space, a tab or a newline: a reason that says nothing is refused)."""

    def __init__(self, *, required: bool) -> None:
        self.required = required

    def __get_pydantic_json_schema__(
        self, core: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core)
        schema["maxLength"] = MAX_NOTE
        schema["format"] = REASON_FORMAT if self.required else NOTE_FORMAT
        schema["description"] = (
            "Plain text: no control, format or invisible character other than newline and tab"
            + ("; not only spaces" if self.required else "")
            + "."
        )
        if self.required:
            schema["minLength"] = 1
        return schema


Note = Annotated[str, AfterValidator(check_note), _NoteSchema(required=False)]
"""A note or reason people write and read: capped, printable (``check_note``)."""

Reason = Annotated[str, AfterValidator(check_note), _NoteSchema(required=True)]
"""A ``Note`` that must say something: the reason of a rejection or a refusal (the service
refuses one that is empty or only spaces)."""
