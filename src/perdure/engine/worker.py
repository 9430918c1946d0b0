"""Claims runnable instances, runs many at once on one event loop, renews their leases.

The loop: claim what is due (up to the free capacity), then sleep until the next timer in the
database, a local nudge (an instance created or finished in this process) or the poll interval,
whichever comes first. Polling is the guarantee; nudges only make it faster.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import DatabaseError, LeaseLostError
from ..states import Status
from ..store.base import Claim, Lease, Store
from .owners import certainly_dead, new_owner
from .runner import Abandon, Run

if TYPE_CHECKING:
    from ..registry import Registry

log = logging.getLogger("perdure.worker")


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    concurrency: int = 1000
    lease_seconds: float = 10.0
    poll_interval: float = 0.25
    claim_batch: int = 1000  # as many as the default concurrency: a herd of due timers in one claim
    threads: int = 64


class Worker:
    """Runs the instances of the registered workflows until stopped."""

    def __init__(self, store: Store, registry: Registry, env: Any, options: WorkerOptions) -> None:
        self.store = store
        self.registry = registry
        self.env = env
        self.options = options
        self.owner = new_owner()
        self.runs: dict[int, tuple[Run, asyncio.Task[None]]] = {}
        self._by_id: dict[tuple[str, str], int] = {}
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._executor = concurrent.futures.ThreadPoolExecutor(options.threads, "perdure-step")
        self.completed = 0
        self._unsubscribe: Callable[[], None] = lambda: None

    # -- lifecycle

    async def start(self) -> None:
        for spec in self.registry.specs():
            await self.store.register_workflow(
                spec.name, spec.class_path, spec.binding, spec.version, spec.max_concurrency
            )
        # Leases of workers on this machine that died (kill -9) need not run out first.
        dead = [owner for owner in await self.store.lease_owners() if certainly_dead(owner)]
        if dead:
            taken = await self.store.expire_leases(dead)
            log.info("took over %d instances of %d dead workers", taken, len(dead))
        # A lone instance may write in the loop's own thread: nobody else waits meanwhile.
        self.store.set_inline_hint(lambda: len(self.runs) <= 1)
        self._tasks = [
            asyncio.create_task(self._claim_loop(), name="perdure-claim"),
            asyncio.create_task(self._heartbeat_loop(), name="perdure-heartbeat"),
        ]
        # Work made runnable by other processes (LISTEN/NOTIFY on PostgreSQL) wakes us at once.
        loop = asyncio.get_running_loop()
        self._unsubscribe = self.store.subscribe(lambda: _call_soon(loop, self.nudge))

    async def stop(self) -> None:
        """Stop claiming, cancel running instances and hand their leases back at once."""
        self.store.set_inline_hint(None)
        self._unsubscribe()
        self._stopping = True
        self._wakeup.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        runs = list(self.runs.values())
        for _, task in runs:
            task.cancel()
        for run, task in runs:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            with contextlib.suppress(Exception):
                await self.store.release(run.lease)
        self._executor.shutdown(wait=False, cancel_futures=True)

    def nudge(self) -> None:
        """Something may be runnable now: claim without waiting for the poll."""
        self._wakeup.set()

    def control(self, workflow: str, instance_id: str, status: Status) -> None:
        """A client in this process changed an instance this worker may be running."""
        iid = self._by_id.get((workflow, instance_id))
        if iid is None or iid not in self.runs:
            self.nudge()
            return
        run, task = self.runs[iid]
        if status == Status.WAITING_FOR_PAUSE:
            run.request_pause()
        elif status == Status.RUNNING:
            run.request_pause(False)
        elif status in (Status.TERMINATED, Status.QUEUED):
            task.cancel()  # terminate or restart: stop at once; the lease is already void
            self.nudge()

    # -- claiming

    async def _claim_loop(self) -> None:
        names = self.registry.names()
        while not self._stopping:
            # Cleared before claiming: a nudge that arrives while we claim is not lost.
            self._wakeup.clear()
            free = self.options.concurrency - len(self.runs)
            claimed: list[Claim] = []
            claimed_at = time.time()
            if free > 0 and names:
                try:
                    claimed = await self.store.claim(
                        self.owner,
                        min(free, self.options.claim_batch),
                        self.options.lease_seconds,
                        names,
                    )
                except DatabaseError as exc:
                    log.warning("claim failed, retrying: %s", exc)
                    await asyncio.sleep(self.options.poll_interval)
                    continue
                for claim in claimed:
                    self._start(claim)
            if len(claimed) == min(free, self.options.claim_batch) and claimed:
                await asyncio.sleep(0)
                continue
            await self._idle(free > 0, claimed_at, names)

    async def _idle(self, has_capacity: bool, claimed_at: float, names: list[str]) -> None:
        """Wait for a nudge, the next timer in the database, or the poll interval."""
        timeout = self.options.poll_interval
        if has_capacity:
            with contextlib.suppress(DatabaseError):
                due = await self.store.next_wake_at(names)
                # A timer already due when we claimed is held back (a concurrency limit, another
                # worker's claim): waiting for it would spin, so the poll interval stands.
                if due is not None and due > claimed_at:
                    timeout = min(timeout, max(0.0, due - time.time()))
        if timeout <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout)

    def _start(self, claim: Claim) -> None:
        spec = self.registry.get(claim.instance.workflow)
        run = Run(claim, spec.cls, self.env, self.store, self._executor)
        task = asyncio.create_task(self._execute(run), name=f"perdure:{claim.instance.id}")
        self.runs[claim.lease.iid] = (run, task)
        self._by_id[(claim.instance.workflow, claim.instance.id)] = claim.lease.iid

    async def _execute(self, run: Run) -> None:
        lease = run.lease
        try:
            outcome = await run.execute()
            if outcome.status == Status.WAITING:
                await self.store.suspend(lease, outcome.wake_at, outcome.wait_types)
            else:
                await self.store.finish(lease, outcome.status, outcome.output, outcome.error)
                self.completed += 1
        except asyncio.CancelledError:
            pass  # terminated, restarted, lease lost or shutting down: the database already knows
        except (Abandon, LeaseLostError, DatabaseError) as exc:
            log.info("gave up instance %s: %s", run.instance.id, exc)
            with contextlib.suppress(Exception):
                await self.store.release(lease)
        except Exception:
            log.exception("internal error running instance %s", run.instance.id)
            with contextlib.suppress(Exception):
                await self.store.release(lease)
        finally:
            self.runs.pop(lease.iid, None)
            key = (run.instance.workflow, run.instance.id)
            if self._by_id.get(key) == lease.iid:
                del self._by_id[key]
            self._wakeup.set()

    # -- leases

    async def _heartbeat_loop(self) -> None:
        interval = self.options.lease_seconds / 3
        while not self._stopping:
            await asyncio.sleep(interval)
            runs = dict(self.runs)
            if not runs:
                continue
            leases: list[Lease] = [run.lease for run, _ in runs.values()]
            try:
                held = await self.store.heartbeat(self.owner, leases, self.options.lease_seconds)
            except DatabaseError as exc:
                log.warning("lease renewal failed: %s", exc)
                continue
            for iid, (run, task) in runs.items():
                status = held.get(iid)
                if status is None:
                    task.cancel()  # another worker, a terminate or a restart owns it now
                else:
                    run.request_pause(status == Status.WAITING_FOR_PAUSE)


def _call_soon(loop: asyncio.AbstractEventLoop, fn: Callable[[], None]) -> None:
    loop.call_soon_threadsafe(fn)
