"""What clients return: statuses and full histories, with stable JSON shapes for the edges."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..states import TERMINAL, Status
from ..store.base import EventRow, InstanceRow, StepRow, WorkflowRow


def seconds_between(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else round(end - start, 6)


def iso(ts: float | None) -> str | None:
    return (
        None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
    )


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    name: str
    message: str
    traceback: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> ErrorInfo | None:
        if not data:
            return None
        return cls(
            str(data.get("name", "Error")), str(data.get("message", "")), data.get("traceback")
        )

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "message": self.message, "traceback": self.traceback}


@dataclass(frozen=True, slots=True)
class InstanceStatus:
    """``status`` is one of Cloudflare's strings; ``output`` once complete; ``error`` once errored."""

    status: str
    output: Any = None
    error: ErrorInfo | None = None

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "output": self.output,
            "error": None
            if self.error is None
            else {"name": self.error.name, "message": self.error.message},
        }


@dataclass(frozen=True, slots=True)
class Attempt:
    attempt: int
    start: float | None
    end: float | None
    error: ErrorInfo | None

    def to_json(self) -> dict[str, Any]:
        return {
            "attempt": self.attempt,
            "start": iso(self.start),
            "end": iso(self.end),
            "duration": seconds_between(self.start, self.end),
            "success": None if self.end is None else self.error is None,
            "error": None if self.error is None else self.error.to_json(),
        }


@dataclass(frozen=True, slots=True)
class StepInfo:
    name: str
    count: int
    kind: str  # do | sleep | wait
    status: str  # running | retrying | success | failure | sleeping | waiting
    start: float | None
    end: float | None
    wake_at: float | None
    output: Any
    error: ErrorInfo | None
    config: dict[str, Any] | None
    attempts: list[Attempt] = field(default_factory=list)

    @classmethod
    def from_row(cls, row: StepRow) -> StepInfo:
        attempts = [
            Attempt(
                int(a.get("attempt", i + 1)),
                a.get("start"),
                a.get("end"),
                ErrorInfo.from_json(a.get("error")),
            )
            for i, a in enumerate(row.attempts)
        ]
        return cls(
            name=row.name,
            count=row.occurrence,
            kind=row.kind,
            status=row.status,
            start=row.started_at,
            end=row.ended_at,
            wake_at=row.wake_at,
            output=row.output,
            error=ErrorInfo.from_json(row.error),
            config=row.config,
            attempts=attempts,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "count": self.count,
            "type": self.kind,
            "status": self.status,
            "start": iso(self.start),
            "end": iso(self.end),
            "duration": seconds_between(self.start, self.end),
            "wake_at": iso(self.wake_at)
            if self.kind != "do" or self.status == "retrying"
            else None,
            "output": self.output,
            "error": None if self.error is None else self.error.to_json(),
            "config": self.config,
            "attempts": [a.to_json() for a in self.attempts],
        }


@dataclass(frozen=True, slots=True)
class EventInfo:
    type: str
    payload: Any
    received_at: float
    consumed_by: str | None

    @classmethod
    def from_row(cls, row: EventRow) -> EventInfo:
        return cls(row.type, row.payload, row.received_at, row.consumed_by)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "payload": self.payload,
            "received_at": iso(self.received_at),
            "consumed_by": self.consumed_by,
        }


@dataclass(frozen=True, slots=True)
class InstanceSummary:
    workflow: str
    id: str
    status: str
    version: str
    created_at: float
    started_at: float | None
    ended_at: float | None
    modified_at: float | None
    wake_at: float | None

    @classmethod
    def from_row(cls, row: InstanceRow) -> InstanceSummary:
        return cls(
            row.workflow,
            row.id,
            row.status.value,
            row.version,
            row.created_at,
            row.started_at,
            row.ended_at,
            row.modified_at,
            row.wake_at if row.status == Status.WAITING else None,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "workflow": self.workflow,
            "id": self.id,
            "status": self.status,
            "version": self.version,
            "created": iso(self.created_at),
            "started": iso(self.started_at),
            "ended": iso(self.ended_at),
            "modified": iso(self.modified_at),
            "wake_at": iso(self.wake_at),
        }


@dataclass(frozen=True, slots=True)
class InstanceDetails:
    """Everything stored about one instance: the data behind describe, the API and the dashboard."""

    workflow: str
    id: str
    status: str
    version: str
    params: Any
    output: Any
    error: ErrorInfo | None
    created_at: float
    started_at: float | None
    ended_at: float | None
    wake_at: float | None
    steps: list[StepInfo]
    events: list[EventInfo]

    @property
    def duration(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.ended_at if self.ended_at is not None else datetime.now(UTC).timestamp()
        return end - self.started_at

    def to_json(self) -> dict[str, Any]:
        return {
            "workflow": self.workflow,
            "id": self.id,
            "status": self.status,
            "version": self.version,
            "params": self.params,
            "output": self.output,
            "error": None if self.error is None else self.error.to_json(),
            "created": iso(self.created_at),
            "started": iso(self.started_at),
            "ended": iso(self.ended_at),
            "duration": None if self.duration is None else round(self.duration, 6),
            "wake_at": iso(self.wake_at),
            "step_count": len(self.steps),
            "steps": [s.to_json() for s in self.steps],
            "events": [e.to_json() for e in self.events],
        }


@dataclass(frozen=True, slots=True)
class WorkflowInfo:
    name: str
    class_path: str
    binding: str
    version: str
    created_at: float
    modified_at: float
    max_concurrency: int | None
    counts: dict[str, int]

    @classmethod
    def from_row(cls, row: WorkflowRow, counts: dict[str, int]) -> WorkflowInfo:
        return cls(
            row.name,
            row.class_path,
            row.binding,
            row.version,
            row.created_at,
            row.modified_at,
            row.max_concurrency,
            counts,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "class_name": self.class_path,
            "binding": self.binding,
            "version": self.version,
            "created": iso(self.created_at),
            "modified": iso(self.modified_at),
            "max_concurrency": self.max_concurrency,
            "instances": self.counts,
        }
