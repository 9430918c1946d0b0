"""The workflows both benchmarks run (bench_sqlite.py and bench_postgres.py)."""

from __future__ import annotations

import time

from perdure import WorkflowEntrypoint, WorkflowEvent, WorkflowStep


async def nothing() -> int:
    return 1


def nothing_sync() -> int:
    return 1


async def now() -> float:
    return time.time()


class Sequential(WorkflowEntrypoint):
    """``steps`` checkpointed steps one after the other; returns the time they took inside run."""

    async def run(self, event: WorkflowEvent, step: WorkflowStep) -> dict[str, float]:
        body = nothing_sync if event.payload.get("sync") else nothing
        started = time.perf_counter()
        for i in range(event.payload["steps"]):
            await step.do(f"step {i}", body)
        return {"seconds": time.perf_counter() - started}


class ThreeSteps(WorkflowEntrypoint):
    async def run(self, event: WorkflowEvent, step: WorkflowStep) -> int:
        total = 0
        for name in ("one", "two", "three"):
            total += await step.do(name, nothing)
        return total


class Sleeper(WorkflowEntrypoint):
    """Sleeps until ``wake`` (epoch seconds); returns how late the next step started."""

    async def run(self, event: WorkflowEvent, step: WorkflowStep) -> float:
        await step.sleep_until("nap", event.payload["wake"])
        woke: float = await step.do("woke", now)
        return woke - event.payload["wake"]
