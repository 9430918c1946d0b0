"""``step``, the second argument of ``run``: every durable thing a workflow does goes through it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from .durations import Duration
from .entrypoint import StepEvent
from .retry import RetryPolicy, StepConfig

if TYPE_CHECKING:
    from collections.abc import Mapping


@dataclass(frozen=True, slots=True)
class StepContext:
    """Passed to a step callback that takes one argument."""

    name: str
    count: int
    attempt: int
    config: StepConfig

    @property
    def idempotency_key(self) -> str:
        """Stable across retries and replays of this step: hand it to the services you call."""
        return f"{self.name}#{self.count}"


StepCallback = Callable[[], Any] | Callable[[StepContext], Any]


class _Engine(Protocol):
    async def do(
        self,
        name: str,
        callback: Callable[..., Any],
        retries: RetryPolicy | Mapping[str, Any] | None,
        timeout: Duration | None,
        config: StepConfig | Mapping[str, Any] | None,
    ) -> Any: ...
    async def sleep(self, name: str, duration: Duration) -> None: ...
    async def sleep_until(self, name: str, when: datetime | float | int) -> None: ...
    async def wait_for_event(self, name: str, type: str, timeout: Duration) -> StepEvent: ...


class WorkflowStep:
    """Durable steps. Each is keyed by its name and how many times the name was used before."""

    __slots__ = ("_engine",)

    def __init__(self, engine: _Engine) -> None:
        self._engine = engine

    def do(
        self,
        name: str,
        callback: Callable[..., Any],
        *,
        retries: RetryPolicy | Mapping[str, Any] | None = None,
        timeout: Duration | None = None,
        config: StepConfig | Mapping[str, Any] | None = None,
    ) -> Awaitable[Any]:
        """Run ``callback`` (sync in a thread, or async) once, retried under the policy; its
        JSON result is stored and returned on every replay without calling it again."""
        return self._engine.do(name, callback, retries, timeout, config)

    def sleep(self, name: str, duration: Duration) -> Awaitable[None]:
        """Suspend the instance for ``duration``; it holds no memory meanwhile."""
        return self._engine.sleep(name, duration)

    def sleep_until(self, name: str, when: datetime | float | int) -> Awaitable[None]:
        """Suspend until an aware datetime, or epoch seconds."""
        return self._engine.sleep_until(name, when)

    def wait_for_event(
        self, name: str, *, type: str, timeout: Duration = "24 hours"
    ) -> Awaitable[StepEvent]:
        """Wait for an event of ``type`` sent to this instance; raises WorkflowTimeoutError on
        timeout. Events sent earlier are kept and delivered first come, first served."""
        return self._engine.wait_for_event(name, type, timeout)
