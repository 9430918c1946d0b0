"""Checks on names and ids, shared by every entry point (client, CLI, HTTP)."""

from __future__ import annotations

import re

from .errors import ValidationError

ID_PATTERN = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9\-_]*$")
MAX_ID_LENGTH = 100
MAX_WORKFLOW_NAME_LENGTH = 64
MAX_STEP_NAME_LENGTH = 256
MAX_EVENT_TYPE_LENGTH = 100
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _identifier(value: object, what: str, limit: int) -> str:
    """Cloudflare's identifier rule: letters, digits, '-' and '_', not starting with '-'."""
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be a string, not {type(value).__name__}")
    if not value or len(value) > limit or not ID_PATTERN.fullmatch(value):
        raise ValidationError(
            f"invalid {what} {value[:120]!r}: use 1 to {limit} letters, digits, '-' or '_', "
            "not starting with '-'"
        )
    return value


def instance_id(value: object) -> str:
    return _identifier(value, "instance id", MAX_ID_LENGTH)


def workflow_name(value: object) -> str:
    return _identifier(value, "workflow name", MAX_WORKFLOW_NAME_LENGTH)


def step_name(value: object) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"step name must be a string, not {type(value).__name__}")
    if not value:
        raise ValidationError("step name must not be empty")
    if len(value) > MAX_STEP_NAME_LENGTH:
        raise ValidationError(
            f"step name {value[:40]!r}... is {len(value)} characters; the limit is {MAX_STEP_NAME_LENGTH}"
        )
    if _CONTROL.search(value):
        raise ValidationError(f"step name {value!r} contains control characters; remove them")
    return value


def event_type(value: object) -> str:
    if isinstance(value, str) and "." in value:
        raise ValidationError(f"event type {value!r} must not contain '.'; use '-' or '_' instead")
    return _identifier(value, "event type", MAX_EVENT_TYPE_LENGTH)
