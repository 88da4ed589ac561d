"""``metrics.json``: the one structured output, a flat JSON object of finite numbers.

Metrics travel into the ledger and the receipt and are shown to people beside the model, so they
are held to a narrow shape: an object (not a list or a scalar), at most ``MAX_METRICS`` keys,
each a printable string of at most ``MAX_KEY_CHARS`` characters, each value an integer or a float
that is finite (``NaN``, ``Infinity`` and numbers too large for a float are refused; ``true`` and
``false`` are not numbers). Duplicate keys are refused rather than silently collapsed.
"""

from __future__ import annotations

import json
import math
from typing import Any

METRICS_FILE = "metrics.json"
MAX_METRICS = 1000
MAX_KEY_CHARS = 200
MAX_METRICS_BYTES = 1024 * 1024

_EXAMPLE = '{"accuracy": 0.93, "n_train": 800}'


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {json.dumps(value)}"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    return type(value).__name__


def _short(key: str) -> str:
    return repr(key if len(key) <= 40 else key[:40] + "...")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"holds {name}, which is not a finite number")


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise ValueError(f"repeats the key {_short(key)}")
        seen.add(key)
    return dict(pairs)


def parse_metrics(data: bytes) -> dict[str, float]:
    """Parse and check ``metrics.json`` bytes; raise ValueError whose message completes
    "metrics.json ..." in a sentence a person can act on."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"is not UTF-8 text (byte {exc.start})") from exc
    try:
        value = json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_unique_pairs)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            f"write an object of numbers like {_EXAMPLE}"
        ) from exc
    except RecursionError as exc:
        raise ValueError("is nested too deeply; write a flat object of numbers") from exc
    if not isinstance(value, dict):
        raise ValueError(f"must be a JSON object of numbers like {_EXAMPLE}, not {_kind(value)}")
    if len(value) > MAX_METRICS:
        raise ValueError(f"has {len(value)} keys; at most {MAX_METRICS} are allowed")
    metrics: dict[str, float] = {}
    for key, raw in value.items():
        if not key or len(key) > MAX_KEY_CHARS or not key.isprintable():
            raise ValueError(
                f"has the key {_short(key)}; keys must be 1-{MAX_KEY_CHARS} printable characters"
            )
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise ValueError(
                f"has {_kind(raw)} as the value of {_short(key)}; every value must be a number "
                "(nested objects, lists, strings, booleans and null are not allowed)"
            )
        try:
            number = float(raw)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise ValueError(f"has a value of {_short(key)} that is not a finite number")
        metrics[key] = number
    return metrics
