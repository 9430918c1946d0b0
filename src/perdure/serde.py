"""JSON encoding of everything perdure stores, with the size limits. No pickle anywhere."""

from __future__ import annotations

import json
from typing import Any

from .errors import PayloadError, PayloadTooLargeError

MAX_PAYLOAD_BYTES = 1024 * 1024
JSON = Any


def _locate(value: object, path: str = "") -> tuple[str, str] | None:
    """The first path inside ``value`` that JSON cannot hold, and its type."""
    if value is None or isinstance(value, bool | int | str):
        return None
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return path or "value", f"float {value}"
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _locate(item, f"{path}[{index}]")
            if found:
                return found
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{path} key {key!r}" if path else f"key {key!r}", type(key).__name__
            found = _locate(item, f"{path}.{key}" if path else key)
            if found:
                return found
        return None
    return path or "value", type(value).__name__


def scalar_json(value: object) -> str | None:
    """The JSON of None, a bool or an int (the common small results), else None: no checks due."""
    if value is None:
        return "null"
    kind = type(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return int.__repr__(value)  # what json.dumps writes for an int
    return None


def dumps(value: object, *, what: str, limit: int = MAX_PAYLOAD_BYTES) -> str:
    """Encode ``value`` as compact JSON, or raise a PayloadError that names ``what`` and the type."""
    text = scalar_json(value)
    if text is not None:
        return text
    found = _locate(value)
    if found:
        where, type_name = found
        at = "" if where == "value" else f" at {where}"
        raise PayloadError(
            f"{what} must be JSON-serializable, but holds a {type_name}{at}; "
            "return plain dicts, lists, strings, numbers, booleans or None"
        )
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    size = len(text.encode())
    if size > limit:
        raise PayloadTooLargeError(
            f"{what} is {size:,} bytes, over the limit of {limit:,} bytes (1 MiB); "
            "store large data elsewhere and pass a reference"
        )
    return text


def loads(text: str | None) -> JSON:
    return None if text is None else json.loads(text)
