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


def instance_id(value: object) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"instance id must be a string, not {type(value).__name__}")
    if not value or len(value) > MAX_ID_LENGTH or not ID_PATTERN.fullmatch(value):
        raise ValidationError(
            f"invalid instance id {value[:120]!r}: use 1 to {MAX_ID_LENGTH} letters, digits, '-' "
            "or '_', not starting with '-'"
        )
    return value


def workflow_name(value: object) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"workflow name must be a string, not {type(value).__name__}")
    if not value or len(value) > MAX_WORKFLOW_NAME_LENGTH or not ID_PATTERN.fullmatch(value):
        raise ValidationError(
            f"invalid workflow name {value[:80]!r}: use 1 to {MAX_WORKFLOW_NAME_LENGTH} letters, "
            "digits, '-' or '_', not starting with '-'"
        )
    return value


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
    if not isinstance(value, str):
        raise ValidationError(f"event type must be a string, not {type(value).__name__}")
    if "." in value:
        raise ValidationError(f"event type {value!r} must not contain '.'; use '-' or '_' instead")
    if not value or len(value) > MAX_EVENT_TYPE_LENGTH or not ID_PATTERN.fullmatch(value):
        raise ValidationError(
            f"invalid event type {value[:120]!r}: use 1 to {MAX_EVENT_TYPE_LENGTH} letters, digits, "
            "'-' or '_', not starting with '-'"
        )
    return value
