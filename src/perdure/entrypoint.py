"""What a user subclasses, and what ``run`` receives."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client.aio import Env
    from .step import WorkflowStep


@dataclass(frozen=True, slots=True)
class WorkflowEvent:
    """The instance's creation event: the same on every replay."""

    payload: Any
    timestamp: datetime
    instance_id: str
    workflow_name: str


@dataclass(frozen=True, slots=True)
class StepEvent:
    """An event delivered to ``step.wait_for_event``."""

    type: str
    payload: Any
    timestamp: datetime


class WorkflowEntrypoint:
    """Subclass it and define ``async def run(self, event, step)``.

    ``run`` is replayed from the top each time the instance wakes up: completed steps return
    their stored results, so code outside steps must be deterministic and free of side effects.
    ``self.env`` holds the other workflows by binding name, to start them from inside a step.
    """

    env: Env

    async def run(self, event: WorkflowEvent, step: WorkflowStep) -> Any:
        raise NotImplementedError(
            f"{type(self).__name__} must define async def run(self, event, step)"
        )
