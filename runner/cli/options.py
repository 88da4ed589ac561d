"""Options and arguments several command modules take, and the help panels they sit in."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from runner.settings import Settings

RESEARCHER = "Researcher"
OWNER = "Data owner"
OPERATOR = "Operator"
ANYONE = "Anyone"

JobArg = Annotated[str, typer.Argument(metavar="JOB", help="The job id.")]
ParamOption = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        "-p",
        metavar="KEY=VALUE",
        help="A job parameter; VALUE is read as JSON if it parses, else as text. Repeatable.",
    ),
]


def parse_params(items: list[str]) -> dict[str, Any]:
    """`KEY=VALUE` strings -> a dict; VALUE is JSON when it parses as JSON, else a string.

    So `n=100` gives 100, `rate=0.1` 0.1, `flag=true` True, `name=forest` "forest",
    `id=007` "007". A key given twice, an empty key or a missing `=` raise ValueError.
    """
    params: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"{item!r} is not KEY=VALUE (for example --param n_estimators=100)")
        if key in params:
            raise ValueError(f"--param {key} is given more than once; give it once")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        params[key] = value
    return params


def note_option(value: str | None) -> str | None:
    """Typer callback: a note or reason must be short plain text (``jobs.fields.check_note``),
    refused as a usage error before anything is sent."""
    if value is not None:
        from jobs.fields import check_note

        try:
            check_note(value)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
    return value


def build_settings(**overrides: Any) -> Settings:
    """Settings from the C2D_ environment, with the flags that were given on top."""
    from pydantic import ValidationError

    from runner.errors import SettingsError
    from runner.settings import Settings

    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"C2D_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise SettingsError(f"the c2d settings are not usable: {problems}") from exc
