"""Durations as users write them: seconds, a timedelta, or a string such as "10 seconds"."""

from __future__ import annotations

import math
import re
from datetime import timedelta

from .errors import InvalidDurationError

Duration = float | int | timedelta | str

_UNITS: dict[str, float] = {
    "ms": 0.001,
    "millisecond": 0.001,
    "second": 1.0,
    "sec": 1.0,
    "s": 1.0,
    "minute": 60.0,
    "min": 60.0,
    "m": 60.0,
    "hour": 3600.0,
    "h": 3600.0,
    "day": 86400.0,
    "d": 86400.0,
    "week": 7 * 86400.0,
    "w": 7 * 86400.0,
    "month": 30 * 86400.0,
    "year": 365.25 * 86400.0,
}
_PATTERN = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]+)\s*$")
_HINT = 'use seconds as a number, a timedelta, or a string such as "500 milliseconds", "10 seconds", "2 hours", "3 days"'


def to_seconds(value: object, *, what: str = "duration") -> float:
    """Seconds in ``value``; raises InvalidDurationError naming ``what`` and the fix."""
    if isinstance(value, bool):
        raise InvalidDurationError(f"{what} must be a duration, not a bool; {_HINT}")
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse(value, what)
    else:
        raise InvalidDurationError(
            f"{what} must be a duration, not {type(value).__name__}; {_HINT}"
        )
    if math.isnan(seconds) or math.isinf(seconds):
        raise InvalidDurationError(f"{what} must be a finite duration, got {value!r}")
    if seconds < 0:
        raise InvalidDurationError(f"{what} must not be negative, got {value!r}")
    return seconds


def _parse(text: str, what: str) -> float:
    stripped = text.strip()
    try:
        return float(stripped)
    except ValueError:
        pass
    match = _PATTERN.match(stripped)
    if not match:
        raise InvalidDurationError(f"{what} {text!r} is not a duration; {_HINT}")
    number, unit = match.groups()
    unit = unit.lower()
    factor = _UNITS.get(unit)
    if factor is None and unit.endswith("s"):
        factor = _UNITS.get(unit[:-1])
    if factor is None:
        units = "milliseconds, seconds, minutes, hours, days, weeks, months, years"
        raise InvalidDurationError(
            f"{what} {text!r} has an unknown unit {unit!r}; use one of {units}"
        )
    return float(number) * factor
