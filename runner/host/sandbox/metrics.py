"""``metrics.json``: the one structured output, a flat JSON object of finite numbers.

Metrics are derived from private data and are shown to people beside the model, so they are held
to a narrow shape: an object (not a list or a scalar) of at most ``max_keys`` keys (the dataset's
policy, ``DEFAULT_MAX_METRICS`` unless its owner says otherwise, never more than ``MAX_METRICS``),
each key a short identifier (``METRIC_KEY``: letters, digits, ``_ . -``, 1-64 characters, so a
key cannot carry a row's text), each value an integer or a float that is finite (``NaN``,
``Infinity`` and numbers too large for a float are refused; ``true`` and ``false`` are not
numbers). Duplicate keys are refused rather than silently collapsed.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

METRICS_FILE = "metrics.json"
MAX_METRICS = 1000
DEFAULT_MAX_METRICS = 100
METRIC_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
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
    return ascii(key if len(key) <= 40 else key[:40] + "...")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"holds {name}, which is not a finite number")


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise ValueError(f"repeats the key {_short(key)}")
        seen.add(key)
    return dict(pairs)


def parse_metrics(data: bytes, max_keys: int = DEFAULT_MAX_METRICS) -> dict[str, float]:
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
    limit = min(max_keys, MAX_METRICS)
    if len(value) > limit:
        raise ValueError(
            f"has {len(value)} keys; at most {limit} are allowed (the dataset's owner sets this)"
        )
    metrics: dict[str, float] = {}
    for key, raw in value.items():
        if not METRIC_KEY.match(key):
            raise ValueError(
                "has a key that is not a short name; keys must be 1-64 letters, digits, "
                "'_', '.' or '-' (like test_accuracy)"
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
