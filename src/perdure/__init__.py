"""perdure: durable, multi-step workflows for Python, on SQLite or PostgreSQL."""

from __future__ import annotations

from .client.aio import App, Env, Instance, WorkflowHandle
from .client.models import (
    ErrorInfo,
    InstanceDetails,
    InstanceStatus,
    InstanceSummary,
    StepInfo,
    WorkflowInfo,
)
from .client.sync import Client, SyncInstance, SyncWorkflowHandle
from .entrypoint import StepEvent, WorkflowEntrypoint, WorkflowEvent
from .errors import (
    ConflictError,
    DatabaseError,
    InstanceExistsError,
    InstanceNotFoundError,
    InvalidDurationError,
    InvalidRetryPolicyError,
    InvalidTransitionError,
    NonDeterminismError,
    NonRetryableError,
    NotFoundError,
    PayloadError,
    PayloadTooLargeError,
    PerdureError,
    StepFailedError,
    ValidationError,
    WorkflowError,
    WorkflowNotFoundError,
    WorkflowTimeoutError,
)
from .registry import Workflow
from .retry import RetryPolicy, StepConfig
from .states import Status
from .step import StepContext, WorkflowStep

__version__ = "0.1.0"

__all__ = [
    "App",
    "Client",
    "ConflictError",
    "DatabaseError",
    "Env",
    "ErrorInfo",
    "Instance",
    "InstanceDetails",
    "InstanceExistsError",
    "InstanceNotFoundError",
    "InstanceStatus",
    "InstanceSummary",
    "InvalidDurationError",
    "InvalidRetryPolicyError",
    "InvalidTransitionError",
    "NonDeterminismError",
    "NonRetryableError",
    "NotFoundError",
    "PayloadError",
    "PayloadTooLargeError",
    "PerdureError",
    "RetryPolicy",
    "Status",
    "StepConfig",
    "StepContext",
    "StepEvent",
    "StepFailedError",
    "StepInfo",
    "SyncInstance",
    "SyncWorkflowHandle",
    "ValidationError",
    "Workflow",
    "WorkflowEntrypoint",
    "WorkflowError",
    "WorkflowEvent",
    "WorkflowHandle",
    "WorkflowInfo",
    "WorkflowNotFoundError",
    "WorkflowStep",
    "WorkflowTimeoutError",
    "__version__",
]
