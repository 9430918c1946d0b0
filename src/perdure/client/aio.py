"""The async client: ``App`` registers workflows, opens the database and hands out handles."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any

from .. import validate
from ..engine.worker import Worker, WorkerOptions
from ..entrypoint import WorkflowEntrypoint
from ..errors import (
    InstanceNotFoundError,
    PerdureError,
    ValidationError,
    WorkflowNotFoundError,
)
from ..registry import Registry, Workflow
from ..serde import dumps
from ..states import Status
from ..store import NewInstance, Store, open_store
from ..store.base import InstanceRow, WorkflowRow
from .models import (
    ErrorInfo,
    EventInfo,
    InstanceDetails,
    InstanceStatus,
    InstanceSummary,
    StepInfo,
    WorkflowInfo,
)

DEFAULT_DATABASE = "perdure.db"
MAX_BATCH = 100
STEP_KINDS = {
    "do": "do",
    "sleep": "sleep",
    "wait": "wait",
    "waitForEvent": "wait",
    "wait_for_event": "wait",
}


def default_database() -> str:
    return os.environ.get("PERDURE_DATABASE") or DEFAULT_DATABASE


class App:
    """Registration and client in one object; create it once.

    ``App(database="app.db", workflows={"onboarding": Onboarding})``. The database is a SQLite
    file by default (``PERDURE_DATABASE`` overrides it) or ``postgresql://...``. ``durability``
    is ``"full"`` (survives power loss) or ``"process"`` (faster; survives process crashes only).
    """

    def __init__(
        self,
        *,
        database: str | None = None,
        workflows: Mapping[str, type[WorkflowEntrypoint]] | Iterable[Workflow] | None = None,
        durability: str = "full",
        register: bool = True,
    ) -> None:
        self.database = database or default_database()
        self.registry = Registry(workflows)
        self.durability = durability
        self.register = register
        self.env = Env(self)
        self._store: Store | None = None
        self._open_lock: asyncio.Lock | None = None
        self._workers: list[Worker] = []

    # -- opening

    async def open(self) -> App:
        if self._store is not None:
            return self
        if self._open_lock is None:
            self._open_lock = asyncio.Lock()
        async with self._open_lock:
            if self._store is None:
                store = open_store(self.database, durability=self.durability)
                await store.open()
                if self.register:
                    for spec in self.registry.specs():
                        await store.register_workflow(
                            spec.name,
                            spec.class_path,
                            spec.binding,
                            spec.version,
                            spec.max_concurrency,
                        )
                self._store = store
        return self

    async def close(self) -> None:
        for worker in list(self._workers):
            await worker.stop()
        self._workers.clear()
        store, self._store = self._store, None
        if store is not None:
            await store.close()

    async def __aenter__(self) -> App:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def store(self) -> Store:
        if self._store is None:
            await self.open()
        assert self._store is not None
        return self._store

    # -- workflows

    def workflow(self, name: str) -> WorkflowHandle:
        validate.workflow_name(name)
        return WorkflowHandle(self, name)

    async def deploy(self) -> list[WorkflowInfo]:
        """Register every workflow of this App with its current code version."""
        store = await self.store()
        for spec in self.registry.specs():
            await store.register_workflow(
                spec.name, spec.class_path, spec.binding, spec.version, spec.max_concurrency
            )
        return [info for info in await self.list_workflows() if self.registry.find(info.name)]

    async def list_workflows(self) -> list[WorkflowInfo]:
        store = await self.store()
        counts = await store.count_by_status(None)
        return [
            WorkflowInfo.from_row(row, counts.get(row.name, {}))
            for row in await store.list_workflows()
        ]

    async def describe_workflow(self, name: str) -> WorkflowInfo:
        store = await self.store()
        row = await self._registered(name)
        counts = await store.count_by_status(name)
        return WorkflowInfo.from_row(row, counts.get(name, {}))

    async def delete_workflow(self, name: str) -> None:
        """Delete a workflow and all its instances; create() fails until it is registered again."""
        store = await self.store()
        await self._registered(name)
        for worker in self._workers:
            for run, task in list(worker.runs.values()):
                if run.instance.workflow == name:
                    task.cancel()
        await store.delete_workflow(name)

    async def _registered(self, name: str) -> WorkflowRow:
        validate.workflow_name(name)
        store = await self.store()
        row = await store.get_workflow(name)
        if row is None:
            known = ", ".join(w.name for w in await store.list_workflows()) or "none"
            raise WorkflowNotFoundError(
                f"unknown workflow {name!r} (registered: {known}); register it with `perdure deploy` "
                "or by starting a worker that defines it"
            )
        return row

    # -- workers

    @contextlib.asynccontextmanager
    async def worker(
        self,
        *,
        concurrency: int = 1000,
        lease_seconds: float = 10.0,
        poll_interval: float = 0.25,
    ) -> AsyncIterator[Worker]:
        """Run every runnable instance of this App's workflows while the block runs."""
        if concurrency < 1:
            raise ValidationError("concurrency must be at least 1")
        if lease_seconds <= 0 or poll_interval <= 0:
            raise ValidationError("lease_seconds and poll_interval must be greater than zero")
        store = await self.store()
        worker = Worker(
            store,
            self.registry,
            self.env,
            WorkerOptions(
                concurrency=concurrency, lease_seconds=lease_seconds, poll_interval=poll_interval
            ),
        )
        await worker.start()
        self._workers.append(worker)
        try:
            yield worker
        finally:
            if worker in self._workers:
                self._workers.remove(worker)
                await worker.stop()

    def run_worker(self, **options: Any) -> None:
        """Run a worker until SIGINT or SIGTERM; for scripts and `perdure worker`."""

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, stop.set)
            try:
                async with self.worker(**options):
                    await stop.wait()
            finally:
                await self.close()

        asyncio.run(main())

    def _nudge(self) -> None:
        for worker in self._workers:
            worker.nudge()

    def _control(self, workflow: str, instance_id: str, status: Status) -> None:
        for worker in self._workers:
            worker.control(workflow, instance_id, status)

    def client(self) -> Any:
        """A synchronous client over this App (see perdure.Client)."""
        from .sync import Client

        return Client(self)


class Env:
    """``self.env`` inside a workflow: the App's workflows by binding name."""

    def __init__(self, app: App) -> None:
        self._app = app

    def __getattr__(self, binding: str) -> WorkflowHandle:
        if binding.startswith("_"):
            raise AttributeError(binding)
        spec = self._app.registry.by_binding(binding)
        if spec is None:
            known = ", ".join(s.binding for s in self._app.registry.specs()) or "none"
            raise AttributeError(f"no workflow is bound to {binding!r}; bindings: {known}")
        return WorkflowHandle(self._app, spec.name)

    def __dir__(self) -> list[str]:
        return [s.binding for s in self._app.registry.specs()]


class WorkflowHandle:
    """One workflow: create instances and look them up."""

    def __init__(self, app: App, name: str) -> None:
        self.app = app
        self.name = name

    def __repr__(self) -> str:
        return f"<WorkflowHandle {self.name!r}>"

    async def create(self, id: str | None = None, params: Any = None) -> Instance:
        """Create an instance; ``id`` defaults to a random UUID; ``params`` must be JSON."""
        created = await self._create([{"id": id, "params": params}], skip_existing=False)
        return created[0]

    async def create_batch(self, items: Sequence[Mapping[str, Any]]) -> list[Instance]:
        """Create up to 100 instances at once; ids that exist are skipped (idempotent)."""
        if isinstance(items, str | bytes) or not isinstance(items, Sequence):
            raise ValidationError("create_batch takes a list of {'id'?, 'params'?} mappings")
        if not items:
            raise ValidationError("create_batch needs at least one instance")
        if len(items) > MAX_BATCH:
            raise ValidationError(
                f"create_batch takes at most {MAX_BATCH} instances, got {len(items)}"
            )
        return await self._create(items, skip_existing=True)

    async def _create(
        self, items: Sequence[Mapping[str, Any]], *, skip_existing: bool
    ) -> list[Instance]:
        rows: list[NewInstance] = []
        seen: set[str] = set()
        for index, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise ValidationError(
                    f"item {index} must be a mapping with optional 'id' and 'params'"
                )
            unknown = set(item) - {"id", "params"}
            if unknown:
                raise ValidationError(
                    f"item {index}: unknown key(s) {sorted(unknown)}; use 'id' and 'params'"
                )
            raw_id = item.get("id")
            instance_id = str(uuid.uuid4()) if raw_id is None else validate.instance_id(raw_id)
            if instance_id in seen:
                if skip_existing:
                    continue
                raise ValidationError(f"instance id {instance_id!r} appears twice in one request")
            seen.add(instance_id)
            params = item.get("params")
            rows.append(
                NewInstance(instance_id, dumps({} if params is None else params, what="params"))
            )
        row = await self.app._registered(self.name)
        store = await self.app.store()
        created = await store.create_instances(
            self.name, row.version, rows, skip_existing=skip_existing
        )
        if created:
            self.app._nudge()
        return [Instance(self.app, self.name, instance_id) for instance_id in created]

    async def get(self, id: str) -> Instance:
        """The instance with this id (``"latest"`` for the newest); raises if there is none."""
        row = await self._row(id)
        return Instance(self.app, self.name, row.id)

    async def _row(self, id: str) -> InstanceRow:
        store = await self.app.store()
        if id == "latest":
            await self.app._registered(self.name)
            row = await store.latest_instance(self.name)
            if row is None:
                raise InstanceNotFoundError(f"workflow {self.name!r} has no instances yet")
            return row
        validate.instance_id(id)
        row = await store.get_instance(self.name, id)
        if row is None:
            await self.app._registered(self.name)
            raise InstanceNotFoundError(f"no instance {id!r} in workflow {self.name!r}")
        return row

    async def list(
        self, *, status: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[InstanceSummary], str | None]:
        """Instances, newest first, and the cursor of the next page (None on the last)."""
        await self.app._registered(self.name)
        if status is not None and status not in {s.value for s in Status}:
            raise ValidationError(
                f"unknown status {status!r}; use one of {', '.join(s.value for s in Status)}"
            )
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise ValidationError("limit must be an integer between 1 and 1000")
        before = _decode_cursor(cursor) if cursor else None
        store = await self.app.store()
        rows = await store.list_instances(self.name, status=status, limit=limit + 1, before=before)
        page = rows[:limit]
        next_cursor = None
        if len(rows) > limit:
            last = page[-1]
            next_cursor = f"{last.created_at!r}:{last.iid}"
        return [InstanceSummary.from_row(row) for row in page], next_cursor


def _decode_cursor(cursor: str) -> tuple[float, int]:
    try:
        created, iid = cursor.split(":")
        return float(created), int(iid)
    except ValueError:
        raise ValidationError(
            f"invalid cursor {cursor!r}; pass the cursor of a previous page"
        ) from None


class Instance:
    """One instance: watch and steer it."""

    def __init__(self, app: App, workflow: str, id: str) -> None:
        self.app = app
        self.workflow = workflow
        self.id = id

    def __repr__(self) -> str:
        return f"<Instance {self.workflow}/{self.id}>"

    async def _row(self) -> InstanceRow:
        return await WorkflowHandle(self.app, self.workflow)._row(self.id)

    async def status(self) -> InstanceStatus:
        row = await self._row()
        return InstanceStatus(row.status.value, row.output, ErrorInfo.from_json(row.error))

    async def describe(self) -> InstanceDetails:
        """The full history: steps in order with attempts, outputs, errors and wake-up times."""
        row = await self._row()
        store = await self.app.store()
        steps = await store.get_steps(row.iid)
        events = await store.get_events(row.iid)
        return InstanceDetails(
            workflow=row.workflow,
            id=row.id,
            status=row.status.value,
            version=row.version,
            params=row.params,
            output=row.output,
            error=ErrorInfo.from_json(row.error),
            created_at=row.created_at,
            started_at=row.started_at,
            ended_at=row.ended_at,
            wake_at=row.wake_at if row.status in (Status.WAITING, Status.QUEUED) else None,
            steps=[StepInfo.from_row(s) for s in steps],
            events=[EventInfo.from_row(e) for e in events],
        )

    async def _act(
        self, action: str, restart_from: tuple[str, int, str] | None = None
    ) -> InstanceStatus:
        store = await self.app.store()
        validate.instance_id(self.id)
        try:
            row = await store.control(self.workflow, self.id, action, restart_from)
        except InstanceNotFoundError:
            await self.app._registered(self.workflow)
            raise
        self.app._control(self.workflow, self.id, row.status)
        return InstanceStatus(row.status.value, row.output, ErrorInfo.from_json(row.error))

    async def pause(self) -> InstanceStatus:
        """Running steps finish (``waitingForPause``), sleeps and waits stop; then ``paused``."""
        return await self._act("pause")

    async def resume(self) -> InstanceStatus:
        """Carry on after a pause; a sleep keeps only the time it had left."""
        return await self._act("resume")

    async def terminate(self) -> InstanceStatus:
        """Stop for good, at once. Refused on a finished instance."""
        return await self._act("terminate")

    async def restart(
        self, *, from_step: str | None = None, count: int = 1, kind: str = "do"
    ) -> InstanceStatus:
        """Run again with the same id and params. With ``from_step``, that step and every step
        started after it run again; results of earlier steps are kept."""
        if from_step is None:
            return await self._act("restart")
        validate.step_name(from_step)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValidationError("count must be an integer of at least 1 (the step's occurrence)")
        if kind not in STEP_KINDS:
            raise ValidationError(f"kind must be one of do, sleep, wait; got {kind!r}")
        return await self._act("restart", (from_step, count, STEP_KINDS[kind]))

    async def send_event(self, type: str, payload: Any = None) -> None:
        """Deliver an event; kept until a wait_for_event of this type takes it."""
        validate.event_type(type)
        validate.instance_id(self.id)
        text = dumps(payload, what="the event payload")
        store = await self.app.store()
        try:
            await store.send_event(self.workflow, self.id, type, text)
        except InstanceNotFoundError:
            await self.app._registered(self.workflow)
            raise
        self.app._nudge()

    async def wait(self, timeout: float | None = None, *, interval: float = 0.02) -> InstanceStatus:
        """Wait until the instance is complete, errored or terminated; return its final status."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = interval
        while True:
            status = await self.status()
            if status.done:
                return status
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(
                    f"instance {self.id!r} is still {status.status} after {timeout} seconds"
                )
            pause = delay if deadline is None else min(delay, max(0.0, deadline - time.monotonic()))
            await asyncio.sleep(pause)
            delay = min(delay * 1.5, 0.1)


__all__ = ["App", "Env", "Instance", "PerdureError", "WorkflowHandle"]
