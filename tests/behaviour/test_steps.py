"""Steps are checkpointed, replayed from their stored result, and keyed by name and occurrence."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from perdure import StepContext, WorkflowEntrypoint, WorkflowEvent, WorkflowStep

from .conftest import FAST

calls: dict[str, int] = {}


def count(name: str, value: Any = None) -> Any:
    calls[name] = calls.get(name, 0) + 1
    return value if value is not None else calls[name]


class Checkout(WorkflowEntrypoint):
    async def run(self, event: WorkflowEvent, step: WorkflowStep) -> Any:
        cart = await step.do(
            "load cart", lambda: count("load cart", {"items": event.payload["items"]})
        )
        await step.sleep("let it settle", 0.2)
        total = await step.do("price", lambda: count("price", len(cart["items"]) * 10))
        return {"total": total, "instance": event.instance_id}


async def test_a_completed_step_is_not_run_again_when_the_instance_replays(make_app: Any) -> None:
    calls.clear()
    app = make_app(checkout=Checkout)
    async with app.worker(**FAST):
        instance = await app.workflow("checkout").create(id="order-1", params={"items": [1, 2, 3]})
        final = await instance.wait(timeout=10)
    assert final.status == "complete"
    assert final.output == {"total": 30, "instance": "order-1"}
    # The sleep made the instance replay from the top: "load cart" ran once all the same.
    assert calls == {"load cart": 1, "price": 1}


class SameNameTwice(WorkflowEntrypoint):
    async def run(self, event: WorkflowEvent, step: WorkflowStep) -> Any:
        first = await step.do("roll", lambda ctx: ctx.count)
        await step.sleep("pause", 0.05)
        second = await step.do("roll", lambda ctx: ctx.count)
        return [first, second]


async def test_the_same_name_used_twice_is_two_steps(make_app: Any) -> None:
    app = make_app(dice=SameNameTwice)
    async with app.worker(**FAST):
        instance = await app.workflow("dice").create()
        final = await instance.wait(timeout=10)
        details = await instance.describe()
    assert final.output == [1, 2]
    assert [(s.name, s.count, s.kind) for s in details.steps] == [
        ("roll", 1, "do"),
        ("pause", 1, "sleep"),
        ("roll", 2, "do"),
    ]


class FanOut(WorkflowEntrypoint):
    async def run(self, event: WorkflowEvent, step: WorkflowStep) -> Any:
        async def branch(n: int) -> int:
            a: int = await step.do(f"fetch {n}", lambda: n)
            await step.sleep(f"rest {n}", 0.05 * n)
            b: int = await step.do(f"double {n}", lambda: a * 2)
            return b

        results = await asyncio.gather(*(branch(n) for n in range(1, 5)))
        return sum(results)


async def test_steps_run_in_parallel_with_gather(make_app: Any) -> None:
    app = make_app(fanout=FanOut)
    async with app.worker(**FAST):
        instance = await app.workflow("fanout").create()
        final = await instance.wait(timeout=10)
        details = await instance.describe()
    assert final.status == "complete", final
    assert final.output == 2 * (1 + 2 + 3 + 4)
    assert len(details.steps) == 12
    assert all(s.status == "success" for s in details.steps)


class Blocking(WorkflowEntrypoint):
    async def run(self, event: WorkflowEvent, step: WorkflowStep) -> Any:
        return await step.do("block", lambda: (time.sleep(0.3), threading.get_ident())[1])


async def test_a_blocking_sync_callback_runs_in_a_thread_and_stalls_nothing(make_app: Any) -> None:
    app = make_app(blocking=Blocking)
    async with app.worker(**FAST):
        started = time.monotonic()
        instances = [await app.workflow("blocking").create() for _ in range(5)]
        results = [await i.wait(timeout=10) for i in instances]
        elapsed = time.monotonic() - started
    assert all(r.status == "complete" for r in results)
    assert all(r.output != threading.get_ident() for r in results)
    assert elapsed < 1.2, f"five 0.3 s blocking steps took {elapsed:.2f} s: they ran one by one"


class Contexts(WorkflowEntrypoint):
    async def run(self, event: WorkflowEvent, step: WorkflowStep) -> Any:
        async def async_step(ctx: StepContext) -> dict[str, Any]:
            await asyncio.sleep(0)
            return {
                "name": ctx.name,
                "count": ctx.count,
                "attempt": ctx.attempt,
                "limit": ctx.config.retries.limit,
                "delay": ctx.config.retries.delay,
                "backoff": ctx.config.retries.backoff,
                "timeout": ctx.config.timeout,
                "key": ctx.idempotency_key,
            }

        seen = await step.do("inspect", async_step)
        plain = await step.do("no argument", lambda: (1, 2))
        return {"seen": seen, "plain": plain}


async def test_a_callback_may_take_the_step_context_and_results_come_back_as_json(
    make_app: Any,
) -> None:
    app = make_app(contexts=Contexts)
    async with app.worker(**FAST):
        final = await (await app.workflow("contexts").create()).wait(timeout=10)
    assert final.output == {
        "seen": {
            "name": "inspect",
            "count": 1,
            "attempt": 1,
            "limit": 5,
            "delay": 10.0,
            "backoff": "exponential",
            "timeout": 600.0,
            "key": "inspect#1",
        },
        "plain": [1, 2],  # a tuple is stored as JSON, so every replay sees the same list
    }


class Parent(WorkflowEntrypoint):
    async def run(self, event: WorkflowEvent, step: WorkflowStep) -> Any:
        async def start_child() -> str:
            child = await self.env.CHILD.create(id=f"{event.instance_id}-child", params={"n": 21})
            return child.id

        child_id = await step.do("start child", start_child)
        return {"child": child_id}


class Child(WorkflowEntrypoint):
    async def run(self, event: WorkflowEvent, step: WorkflowStep) -> Any:
        return await step.do("double", lambda: event.payload["n"] * 2)


async def test_a_workflow_starts_another_through_env(make_app: Any) -> None:
    app = make_app(parent=Parent, child=Child)
    async with app.worker(**FAST):
        parent = await app.workflow("parent").create(id="p1")
        assert (await parent.wait(timeout=10)).output == {"child": "p1-child"}
        child = await app.workflow("child").get("p1-child")
        assert (await child.wait(timeout=10)).output == 42
