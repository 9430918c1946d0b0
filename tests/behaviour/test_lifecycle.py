"""pause, resume, terminate and restart, from the user's side."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from perdure import (
    InvalidTransitionError,
    StepContext,
    ValidationError,
    WorkflowEntrypoint,
    WorkflowEvent,
    WorkflowStep,
)

from .conftest import FAST, status_is, until

runs: dict[str, int] = {}


def tick(name: str) -> int:
    runs[name] = runs.get(name, 0) + 1
    return runs[name]


class Sleeper(WorkflowEntrypoint):
    async def run(self, event: WorkflowEvent, step: WorkflowStep) -> Any:
        await step.do("before", lambda: tick("before"))
        await step.sleep("long nap", event.payload.get("nap", 1.0))
        return await step.do("after", lambda: tick("after"))


async def test_pause_interrupts_a_sleep_and_resume_keeps_only_its_remaining_time(
    make_app: Any,
) -> None:
    app = make_app(sleeper=Sleeper)
    async with app.worker(**FAST):
        instance = await app.workflow("sleeper").create(params={"nap": 1.0})
        await status_is(instance, "waiting")
        wake = (await instance.describe()).steps[1].wake_at
        await asyncio.sleep(0.3)
        assert (await instance.pause()).status == "paused"
        await asyncio.sleep(0.8)  # longer than the rest of the nap: a paused sleep does not run out
        assert (await instance.status()).status == "paused"
        resumed_at = time.time()
        await instance.resume()
        assert (await instance.status()).status == "waiting"
        new_wake = (await instance.describe()).steps[1].wake_at
        final = await instance.wait(10)
    assert final.status == "complete"
    assert wake is not None and new_wake is not None
    # about 0.7 s of nap was left when paused; it is owed again after resume
    assert 0.5 < new_wake - resumed_at < 0.9, new_wake - resumed_at


class LongStep(WorkflowEntrypoint):
    async def run(self, event: WorkflowEvent, step: WorkflowStep) -> Any:
        async def slow(ctx: StepContext) -> str:
            await asyncio.sleep(event.payload.get("step", 0.5))
            return "done"

        first = await step.do("slow", slow)
        second = await step.do("next", lambda: "next")
        return [first, second]


async def test_pause_lets_a_running_step_finish_then_holds_the_instance(make_app: Any) -> None:
    app = make_app(long=LongStep)
    async with app.worker(**FAST):
        instance = await app.workflow("long").create(params={"step": 0.5})
        await until(lambda: _has_running_step(instance))
        assert (await instance.pause()).status == "waitingForPause"
        await status_is(instance, "paused")
        steps = (await instance.describe()).steps
        assert [(s.name, s.status) for s in steps] == [("slow", "success")]
        await instance.resume()
        final = await instance.wait(10)
    assert final.output == ["done", "next"]


async def _has_running_step(instance: Any) -> bool:
    steps = (await instance.describe()).steps
    return bool(steps) and steps[0].status == "running"


async def test_terminate_stops_an_instance_at_once_and_is_refused_when_finished(
    make_app: Any,
) -> None:
    app = make_app(long=LongStep)
    async with app.worker(**FAST) as worker:
        instance = await app.workflow("long").create(params={"step": 30})
        await until(lambda: _has_running_step(instance))
        started = time.monotonic()
        assert (await instance.terminate()).status == "terminated"
        await until(lambda: _no_runs(worker), timeout=2)
        assert time.monotonic() - started < 1
        await asyncio.sleep(0.2)
        assert (await instance.status()).status == "terminated"
        with pytest.raises(InvalidTransitionError, match="terminated"):
            await instance.terminate()
        with pytest.raises(InvalidTransitionError):
            await instance.pause()


async def _no_runs(worker: Any) -> bool:
    return not worker.runs


async def test_terminate_works_on_a_queued_and_on_a_paused_instance(make_app: Any) -> None:
    app = make_app(sleeper=Sleeper)
    queued = await app.workflow("sleeper").create()
    assert (await queued.terminate()).status == "terminated"
    async with app.worker(**FAST):
        paused = await app.workflow("sleeper").create(params={"nap": 5})
        await status_is(paused, "waiting")
        await paused.pause()
        assert (await paused.terminate()).status == "terminated"


async def test_restart_erases_the_history_and_runs_again_with_the_same_id_and_params(
    make_app: Any,
) -> None:
    runs.clear()
    app = make_app(sleeper=Sleeper)
    async with app.worker(**FAST):
        instance = await app.workflow("sleeper").create(id="again", params={"nap": 0.05})
        first = await instance.wait(10)
        await instance.restart()
        second = await instance.wait(10)
        details = await instance.describe()
    assert (first.output, second.output) == (1, 2)
    assert runs == {"before": 2, "after": 2}
    assert details.id == "again" and details.params == {"nap": 0.05}
    assert len(details.steps) == 3


class ThreeSteps(WorkflowEntrypoint):
    async def run(self, event: WorkflowEvent, step: WorkflowStep) -> Any:
        a = await step.do("a", lambda: tick("a"))
        b = await step.do("b", lambda: tick("b"))
        c = await step.do("c", lambda: tick("c"))
        return [a, b, c]


async def test_restart_from_a_step_keeps_the_results_of_earlier_steps(make_app: Any) -> None:
    runs.clear()
    app = make_app(three=ThreeSteps)
    async with app.worker(**FAST):
        instance = await app.workflow("three").create()
        assert (await instance.wait(10)).output == [1, 1, 1]
        await instance.restart(from_step="b")
        assert (await instance.wait(10)).output == [1, 2, 2]
        with pytest.raises(ValidationError, match="no such step"):
            await instance.restart(from_step="zzz")
    assert runs == {"a": 1, "b": 2, "c": 2}


async def test_resume_of_a_running_instance_changes_nothing(make_app: Any) -> None:
    app = make_app(sleeper=Sleeper)
    async with app.worker(**FAST):
        instance = await app.workflow("sleeper").create(params={"nap": 0.3})
        await status_is(instance, "waiting")
        assert (await instance.resume()).status == "waiting"
        assert (await instance.wait(10)).status == "complete"
        with pytest.raises(InvalidTransitionError):
            await instance.resume()


async def test_a_paused_queued_instance_does_not_start_until_resumed(make_app: Any) -> None:
    app = make_app(three=ThreeSteps)
    instance = await app.workflow("three").create()
    assert (await instance.pause()).status == "paused"
    async with app.worker(**FAST):
        await asyncio.sleep(0.3)
        assert (await instance.status()).status == "paused"
        await instance.resume()
        assert (await instance.wait(10)).status == "complete"
