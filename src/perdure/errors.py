"""Every error perdure raises, under one root.

    PerdureError
    ├── ValidationError          bad input from the caller; the message says how to fix it
    │   ├── InvalidDurationError
    │   ├── InvalidRetryPolicyError
    │   ├── PayloadError         not JSON, or over the size limit
    │   │   └── PayloadTooLargeError
    │   └── ConfigError          perdure.toml or App arguments
    ├── NotFoundError            unknown workflow or instance
    │   ├── WorkflowNotFoundError
    │   └── InstanceNotFoundError
    ├── ConflictError
    │   ├── InstanceExistsError  the id is taken
    │   └── InvalidTransitionError  e.g. terminate a finished instance
    ├── DatabaseError            the database is missing, locked or unreachable
    ├── LeaseLostError           internal: another worker owns the instance now
    └── WorkflowError            raised into ``run`` by a step (user code may catch these)
        ├── StepFailedError      a step exhausted its retries; ``cause`` holds the last error
        ├── WorkflowTimeoutError an event wait timed out
        └── NonDeterminismError  the code changed under a running instance

``NonRetryableError`` is raised by user code inside a step to fail it at once.
"""

from __future__ import annotations

from typing import Any


class PerdureError(Exception):
    """Root of every perdure error."""

    code = "error"


class ValidationError(PerdureError, ValueError):
    code = "invalid"


class InvalidDurationError(ValidationError):
    code = "invalid_duration"


class InvalidRetryPolicyError(ValidationError):
    code = "invalid_retry_policy"


class PayloadError(ValidationError):
    code = "invalid_payload"


class PayloadTooLargeError(PayloadError):
    code = "payload_too_large"


class ConfigError(ValidationError):
    code = "invalid_config"


class NotFoundError(PerdureError, LookupError):
    code = "not_found"


class WorkflowNotFoundError(NotFoundError):
    code = "workflow_not_found"


class InstanceNotFoundError(NotFoundError):
    code = "instance_not_found"


class ConflictError(PerdureError):
    code = "conflict"


class InstanceExistsError(ConflictError):
    code = "instance_exists"


class InvalidTransitionError(ConflictError):
    code = "invalid_transition"


class DatabaseError(PerdureError):
    code = "database_error"


class LeaseLostError(PerdureError):
    """Another worker claimed the instance, or it was terminated or restarted."""

    code = "lease_lost"


class WorkflowError(PerdureError):
    """An error a step raises into ``run``; catch it to carry on."""

    code = "workflow_error"

    def __init__(self, message: str, *, name: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.name = name or type(self).__name__


class StepFailedError(WorkflowError):
    """A step failed for good. ``name`` and ``message`` are those of its last error."""

    code = "step_failed"

    def __init__(self, step: str, name: str, message: str, traceback: str | None = None) -> None:
        super().__init__(message, name=name)
        self.step = step
        self.traceback = traceback

    def __str__(self) -> str:
        return f"{self.name}: {self.message}"


class WorkflowTimeoutError(WorkflowError):
    code = "timeout"


class NonDeterminismError(WorkflowError):
    code = "nondeterminism"


class NonRetryableError(Exception):
    """Raise inside a step to fail it at once, with no retry."""

    def __init__(self, message: str = "", name: str = "NonRetryableError") -> None:
        super().__init__(message)
        self.message = message
        self.name = name


def error_info(exc: BaseException) -> dict[str, Any]:
    """The stored shape of an error: name and message (tracebacks are added by the caller)."""
    if isinstance(exc, WorkflowError | NonRetryableError):
        return {"name": exc.name, "message": exc.message}
    return {"name": type(exc).__name__, "message": str(exc)}
