"""max_concurrency: at most that many instances of a workflow run at once, across all workers.

On both backends: two workers (two Apps, each with its own connections, as two processes
would have) share one database; the limit holds across them, instances beyond it wait their
turn, and the limit never strands instances whose worker died.
"""

from __future__ import annotations

import asyncio
import threading

import perdure
from perdure import WorkflowEntrypoint, WorkflowEvent, WorkflowStep
from perdure.store import open_store
from perdure.store.base import NewInstance

LIMIT = 3


class Running:
    """How many step bodies run right now, across both workers, and the most ever seen."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0

    def enter(self) -> None:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def leave(self) -> None:
        with self.lock:
            self.now -= 1


RUNNING = Running()


class Limited(WorkflowEntrypoint):
    async def run(self, event: WorkflowEvent, step: WorkflowStep) -> int:
        async def busy() -> int:
            RUNNING.enter()
            try:
                await asyncio.sleep(0.05)
            finally:
                RUNNING.leave()
            return 1

        return int(await step.do("busy", busy)) + int(await step.do("busy again", busy))


def limited_app(url: str) -> perdure.App:
    return perdure.App(
        database=url, workflows=[perdure.Workflow("limited", Limited, max_concurrency=LIMIT)]
    )


async def test_the_limit_holds_across_workers(database_url: str) -> None:
    RUNNING.most = 0
    first, second = limited_app(database_url), limited_app(database_url)
    async with first, second:
        instances = await first.workflow("limited").create_batch([{} for _ in range(20)])
        async with first.worker(poll_interval=0.02), second.worker(poll_interval=0.02):
            statuses = await asyncio.gather(*(i.wait(timeout=60) for i in instances))
        info = await first.describe_workflow("limited")
    assert all(s.status == "complete" for s in statuses)
    assert info.counts == {"complete": 20}
    assert RUNNING.most == LIMIT, f"{RUNNING.most} ran at once; the limit is {LIMIT}"


async def test_a_dead_workers_instances_do_not_count_against_the_limit(database_url: str) -> None:
    store = open_store(database_url)
    await store.open()
    try:
        await store.register_workflow("limited", "tests:Limited", "LIMITED", "v1", LIMIT)
        await store.create_instances(
            "limited", "v1", [NewInstance(f"i{n}", "{}") for n in range(5)], skip_existing=False
        )
        held = await store.claim("A", 10, 0.2, ["limited"])
        assert len(held) == LIMIT  # A is at the limit...
        assert await store.claim("B", 10, 30, ["limited"]) == []  # ... so B gets nothing
        await asyncio.sleep(0.3)  # A dies: its leases run out
        taken = await store.claim("B", 10, 30, ["limited"])
        # B takes over A's three and stays within the limit: the other two still wait.
        assert {c.instance.id for c in taken} == {c.instance.id for c in held}
        assert await store.claim("C", 10, 30, ["limited"]) == []
    finally:
        await store.close()
