"""The synchronous client, for scripts and WSGI apps: the async client run on a private loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from ..entrypoint import WorkflowEntrypoint
from ..registry import Workflow
from .aio import App, Instance, WorkflowHandle
from .models import InstanceDetails, InstanceStatus, InstanceSummary, WorkflowInfo

T = TypeVar("T")


class _Portal:
    """An event loop in a daemon thread that runs coroutines for sync callers."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="perdure-client", daemon=True
        )
        self.thread.start()

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


class Client:
    """``Client(database=..., workflows=...)`` or ``Client(app)``; use it in a ``with`` block."""

    def __init__(
        self,
        app: App | None = None,
        *,
        database: str | None = None,
        workflows: Mapping[str, type[WorkflowEntrypoint]] | Iterable[Workflow] | None = None,
        durability: str = "full",
    ) -> None:
        self.app = app or App(database=database, workflows=workflows, durability=durability)
        self._portal = _Portal()

    def __enter__(self) -> Client:
        self._portal.call(self.app.open())
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._portal.thread.is_alive():
            self._portal.call(self.app.close())
            self._portal.close()

    def workflow(self, name: str) -> SyncWorkflowHandle:
        return SyncWorkflowHandle(self._portal, self.app.workflow(name))

    def list_workflows(self) -> list[WorkflowInfo]:
        return self._portal.call(self.app.list_workflows())

    def describe_workflow(self, name: str) -> WorkflowInfo:
        return self._portal.call(self.app.describe_workflow(name))

    def delete_workflow(self, name: str) -> None:
        self._portal.call(self.app.delete_workflow(name))

    def deploy(self) -> list[WorkflowInfo]:
        return self._portal.call(self.app.deploy())


class SyncWorkflowHandle:
    def __init__(self, portal: _Portal, handle: WorkflowHandle) -> None:
        self._portal = portal
        self._handle = handle
        self.name = handle.name

    def create(self, id: str | None = None, params: Any = None) -> SyncInstance:
        return SyncInstance(
            self._portal, self._portal.call(self._handle.create(id=id, params=params))
        )

    def create_batch(self, items: Sequence[Mapping[str, Any]]) -> list[SyncInstance]:
        return [
            SyncInstance(self._portal, i)
            for i in self._portal.call(self._handle.create_batch(items))
        ]

    def get(self, id: str) -> SyncInstance:
        return SyncInstance(self._portal, self._portal.call(self._handle.get(id)))

    def list(
        self, *, status: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[InstanceSummary], str | None]:
        return self._portal.call(self._handle.list(status=status, limit=limit, cursor=cursor))


class SyncInstance:
    def __init__(self, portal: _Portal, instance: Instance) -> None:
        self._portal = portal
        self._instance = instance
        self.id = instance.id
        self.workflow = instance.workflow

    def __repr__(self) -> str:
        return f"<SyncInstance {self.workflow}/{self.id}>"

    def status(self) -> InstanceStatus:
        return self._portal.call(self._instance.status())

    def describe(self) -> InstanceDetails:
        return self._portal.call(self._instance.describe())

    def pause(self) -> InstanceStatus:
        return self._portal.call(self._instance.pause())

    def resume(self) -> InstanceStatus:
        return self._portal.call(self._instance.resume())

    def terminate(self) -> InstanceStatus:
        return self._portal.call(self._instance.terminate())

    def restart(
        self, *, from_step: str | None = None, count: int = 1, kind: str = "do"
    ) -> InstanceStatus:
        return self._portal.call(
            self._instance.restart(from_step=from_step, count=count, kind=kind)
        )

    def send_event(self, type: str, payload: Any = None) -> None:
        self._portal.call(self._instance.send_event(type, payload))

    def wait(self, timeout: float | None = None) -> InstanceStatus:
        return self._portal.call(self._instance.wait(timeout))
