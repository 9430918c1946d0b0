"""Sleeps and event waits suspend the instance: no task, no memory, a wake-up time in the database."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from perdure import (
    App,
    WorkflowEntrypoint,
    WorkflowEvent,
    WorkflowStep,
    WorkflowTimeoutError,
)

from .conftest import FAST, status_is


class Nap(WorkflowEntrypoint):
    async def run(self, event: WorkflowEvent, step: WorkflowStep) -> Any:
        await step.sleep("nap", event.payload.get("seconds", 0.5))
        return time.time()


async def test_a_sleeping_instance_reports_waiting_and_holds_nothing_in_the_worker(
    make_app: Any,
) -> None:
    app = make_app(nap=Nap)
    async with app.worker(**FAST) as worker:
        started = time.time()
        instance = await app.workflow("nap").create(params={"seconds": 0.5})
        await status_is(instance, "waiting")
        assert worker.runs == {}
        details = await instance.describe()
        assert details.steps[0].kind == "sleep" and details.steps[0].status == "sleeping"
        assert details.steps[0].wake_at is not None
        assert abs(details.steps[0].wake_at - (started + 0.5)) < 0.3
        final = await instance.wait(timeout=10)
    assert final.output >= started + 0.5


class Until(WorkflowEntrypoint):
    async def run(self, event: WorkflowEvent, step: WorkflowStep) -> Any:
        when = datetime.fromisoformat(event.payload["when"])
        await step.sleep_until("alarm", when)
        return time.time()


async def test_sleep_until_wakes_at_the_given_time(make_app: Any) -> None:
    app = make_app(until=Until)
    when = datetime.now(UTC) + timedelta(seconds=0.4)
    async with app.worker(**FAST):
        final = await (await app.workflow("until").create(params={"when": when.isoformat()})).wait(
            10
        )
    assert final.status == "complete"
    assert final.output >= when.timestamp()


class Drifting(WorkflowEntrypoint):
    async def run(self, event: WorkflowEvent, step: WorkflowStep) -> Any:
        # A computed duration: the replay must keep the first wake-up time, not start over.
        await step.sleep("computed", 0.4 + (time.time() % 1) / 10)
        return "woke"


async def test_a_sleep_is_keyed_by_name_not_by_its_duration(make_app: Any) -> None:
    app = make_app(drifting=Drifting)
    async with app.worker(**FAST):
        instance = await app.workflow("drifting").create()
        await status_is(instance, "waiting")
        wake = (await instance.describe()).steps[0].wake_at
        # Pause and resume at once forces a replay of the sleep with a new computed duration.
        await instance.pause()
        await instance.resume()
        await status_is(instance, "waiting")
        assert (await instance.describe()).steps[0].wake_at is not None
        final = await instance.wait(10)
        details = await instance.describe()
    assert final.output == "woke"
    assert len(details.steps) == 1
    assert wake is not None and details.steps[0].wake_at is not None
    assert abs(details.steps[0].wake_at - wake) < 0.2


async def test_sleeps_that_came_due_while_no_worker_ran_fire_at_start(database_url: str) -> None:
    app = App(database=database_url, workflows={"nap": Nap})
    try:
        async with app.worker(**FAST):
            instance = await app.workflow("nap").create(params={"seconds": 0.3})
            await status_is(instance, "waiting")
        await asyncio.sleep(0.5)  # no worker now: the sleep comes due unattended
        assert (await instance.status()).status == "waiting"
        async with app.worker(**FAST):
            started = time.time()
            final = await instance.wait(10)
            assert time.time() - started < 1.0
        assert final.status == "complete"
    finally:
        await app.close()


class Approval(WorkflowEntrypoint):
    async def run(self, event: WorkflowEvent, step: WorkflowStep) -> Any:
        await step.do("prepare", lambda: "ready")
        reply = await step.wait_for_event(
            "wait for approval", type="approval", timeout=event.payload.get("timeout", "10 seconds")
        )
        return {"ok": reply.payload["ok"], "type": reply.type, "at": reply.timestamp.isoformat()}


async def test_an_event_reaches_the_waiting_instance(make_app: Any) -> None:
    app = make_app(approval=Approval)
    async with app.worker(**FAST) as worker:
        instance = await app.workflow("approval").create()
        await status_is(instance, "waiting")
        assert worker.runs == {}
        await instance.send_event("approval", {"ok": True})
        final = await instance.wait(10)
        details = await instance.describe()
    assert final.output["ok"] is True and final.output["type"] == "approval"
    wait = details.steps[1]
    assert (wait.kind, wait.status, wait.output["payload"]) == ("wait", "success", {"ok": True})
    assert details.events[0].consumed_by == "wait for approval#1"


async def test_an_event_sent_before_the_wait_is_kept_and_delivered(make_app: Any) -> None:
    app = make_app(approval=Approval)
    instance = await app.workflow("approval").create()
    await instance.send_event("approval", {"ok": "early"})
    async with app.worker(**FAST):
        final = await instance.wait(10)
    assert final.output["ok"] == "early"


class TwoWaits(WorkflowEntrypoint):
    async def run(self, event: WorkflowEvent, step: WorkflowStep) -> Any:
        first = await step.wait_for_event("first", type="vote")
        second = await step.wait_for_event("second", type="vote")
        return [first.payload, second.payload]


async def test_events_of_one_type_are_served_first_come_first_served(make_app: Any) -> None:
    app = make_app(two=TwoWaits)
    instance = await app.workflow("two").create()
    for n in (1, 2, 3):
        await instance.send_event("vote", n)
    async with app.worker(**FAST):
        final = await instance.wait(10)
        events = (await instance.describe()).events
    assert final.output == [1, 2]
    assert [e.consumed_by for e in events] == ["first#1", "second#1", None]


class CatchTimeout(WorkflowEntrypoint):
    async def run(self, event: WorkflowEvent, step: WorkflowStep) -> Any:
        try:
            await step.wait_for_event("approval", type="approval", timeout=0.3)
        except WorkflowTimeoutError as exc:
            return {"timed_out": exc.name}
        return {"timed_out": False}


async def test_a_wait_that_times_out_raises_an_error_run_can_catch(make_app: Any) -> None:
    app = make_app(catch=CatchTimeout, approval=Approval)
    async with app.worker(**FAST):
        caught = await (await app.workflow("catch").create()).wait(10)
        uncaught_instance = await app.workflow("approval").create(params={"timeout": 0.3})
        uncaught = await uncaught_instance.wait(10)
        details = await uncaught_instance.describe()
    assert caught.output == {"timed_out": "WorkflowTimeoutError"}
    assert uncaught.status == "errored"
    assert uncaught.error is not None and uncaught.error.name == "WorkflowTimeoutError"
    assert details.steps[1].status == "failure"
