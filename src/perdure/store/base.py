"""The storage interface the engine and the clients talk to, and the rows it returns.

Every worker write is fenced: it names the lease (instance, owner, epoch) it holds and fails with
LeaseLostError when another worker, a terminate or a restart has taken the instance since.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..states import Status


@dataclass(frozen=True, slots=True)
class WorkflowRow:
    name: str
    class_path: str
    binding: str
    version: str
    created_at: float
    modified_at: float
    max_concurrency: int | None = None


@dataclass(frozen=True, slots=True)
class InstanceRow:
    iid: int
    workflow: str
    id: str
    status: Status
    params: Any
    created_at: float
    version: str
    started_at: float | None = None
    ended_at: float | None = None
    output: Any = None
    error: dict[str, Any] | None = None
    wake_at: float | None = None
    paused_at: float | None = None
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    epoch: int = 0
    wait_types: str | None = None
    modified_at: float | None = None


@dataclass(frozen=True, slots=True)
class StepRow:
    key: str
    name: str
    occurrence: int
    kind: str  # do | sleep | wait
    status: str  # running | retrying | success | failure | sleeping | waiting
    seq: int
    config: dict[str, Any] | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    output: Any = None
    error: dict[str, Any] | None = None
    started_at: float | None = None
    ended_at: float | None = None
    wake_at: float | None = None


@dataclass(frozen=True, slots=True)
class StepWrite:
    """A step row as the runner writes it (inserted or replaced whole)."""

    key: str
    name: str
    occurrence: int
    kind: str
    status: str
    seq: int
    config: str | None  # JSON text
    attempts: str  # JSON text
    output: str | None  # JSON text
    error: str | None  # JSON text
    started_at: float | None
    ended_at: float | None
    wake_at: float | None


@dataclass(frozen=True, slots=True)
class EventRow:
    seq: int
    type: str
    payload: Any
    received_at: float
    consumed_by: str | None = None


@dataclass(frozen=True, slots=True)
class Lease:
    iid: int
    owner: str
    epoch: int


@dataclass(frozen=True, slots=True)
class Claim:
    lease: Lease
    instance: InstanceRow
    steps: list[StepRow]


@dataclass(frozen=True, slots=True)
class NewInstance:
    id: str
    params: str  # JSON text


class Store(Protocol):
    """What the engine and the clients need from a database. Times are epoch seconds."""

    url: str

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` from another thread when work may have become runnable elsewhere
        (a hint; workers poll anyway). Returns the function that stops it."""
        ...

    # -- workflows
    async def register_workflow(
        self, name: str, class_path: str, binding: str, version: str, max_concurrency: int | None
    ) -> None: ...
    async def list_workflows(self) -> list[WorkflowRow]: ...
    async def get_workflow(self, name: str) -> WorkflowRow | None: ...
    async def delete_workflow(self, name: str) -> bool: ...

    # -- instances, for clients
    async def create_instances(
        self, workflow: str, version: str, items: list[NewInstance], *, skip_existing: bool
    ) -> list[str]: ...
    async def get_instance(self, workflow: str, instance_id: str) -> InstanceRow | None: ...
    async def latest_instance(self, workflow: str) -> InstanceRow | None: ...
    async def list_instances(
        self, workflow: str, *, status: str | None, limit: int, before: tuple[float, int] | None
    ) -> list[InstanceRow]: ...
    async def count_by_status(self, workflow: str | None) -> dict[str, dict[str, int]]: ...
    async def get_steps(self, iid: int) -> list[StepRow]: ...
    async def get_events(self, iid: int) -> list[EventRow]: ...
    async def control(
        self,
        workflow: str,
        instance_id: str,
        action: str,
        restart_from: tuple[str, int, str] | None,
    ) -> InstanceRow: ...
    async def send_event(self, workflow: str, instance_id: str, type: str, payload: str) -> int: ...
    async def activity(
        self, workflow: str, since: float, bucket: float
    ) -> list[dict[str, Any]]: ...

    # -- worker
    async def claim(
        self, owner: str, limit: int, lease_seconds: float, workflows: list[str]
    ) -> list[Claim]: ...
    async def heartbeat(
        self, owner: str, leases: list[Lease], lease_seconds: float
    ) -> dict[int, Status]: ...
    async def next_wake_at(self, workflows: list[str]) -> float | None: ...
    async def lease_owners(self) -> list[str]: ...
    def set_inline_hint(self, hint: Callable[[], bool] | None) -> None: ...
    async def expire_leases(self, owners: list[str]) -> int: ...
    def save_step(self, lease: Lease, step: StepWrite, *, durable: bool = True) -> Any:
        """Write a step row. Returns an awaitable of the instance status; with durable=False the
        write joins the next commit and the caller need not wait for it."""
        ...

    async def consume_event(self, lease: Lease, step: StepWrite, type: str) -> EventRow | None: ...
    async def suspend(
        self, lease: Lease, wake_at: float | None, wait_types: list[str]
    ) -> Status: ...
    async def finish(
        self, lease: Lease, status: Status, output: str | None, error: str | None
    ) -> None: ...
    async def release(self, lease: Lease) -> None: ...
