"""A failing step is retried under its policy; when it gives up, the error reaches ``run``."""

from __future__ import annotations

import asyncio
from typing import Any

from perdure import (
    NonRetryableError,
    RetryPolicy,
    StepConfig,
    StepContext,
    StepFailedError,
    WorkflowEntrypoint,
    WorkflowEvent,
    WorkflowStep,
)

from .conftest import FAST

attempts_seen: list[int] = []


def flaky(ctx: StepContext) -> str:
    attempts_seen.append(ctx.attempt)
    if ctx.attempt < 3:
        raise ConnectionError(f"network down (attempt {ctx.attempt})")
    return "sent"


class Flaky(WorkflowEntrypoint):
    async def run(self, event: WorkflowEvent, step: WorkflowStep) -> Any:
        return await step.do(
            "send",
            flaky,
            retries={"limit": 3, "delay": "100 milliseconds", "backoff": "exponential"},
        )


async def test_a_step_is_retried_until_it_succeeds_and_every_attempt_is_recorded(
    make_app: Any,
) -> None:
    attempts_seen.clear()
    app = make_app(flaky=Flaky)
    async with app.worker(**FAST):
        instance = await app.workflow("flaky").create()
        final = await instance.wait(timeout=10)
        step = (await instance.describe()).steps[0]
    assert final.output == "sent"
    assert attempts_seen == [1, 2, 3]
    assert [a.attempt for a in step.attempts] == [1, 2, 3]
    assert [a.error.name if a.error else None for a in step.attempts] == [
        "ConnectionError",
        "ConnectionError",
        None,
    ]
    first = step.attempts[0]
    assert first.error is not None and first.error.message == "network down (attempt 1)"
    assert first.error.traceback and "ConnectionError" in first.error.traceback
    # exponential: 0.1 s after the first failure, 0.2 s after the second
    gap1 = step.attempts[1].start - step.attempts[0].end  # type: ignore[operator]
    gap2 = step.attempts[2].start - step.attempts[1].end  # type: ignore[operator]
    assert 0.09 <= gap1 < 0.6 and 0.19 <= gap2 < 0.8, (gap1, gap2)


def always_fails(ctx: StepContext) -> None:
    attempts_seen.append(ctx.attempt)
    raise ValueError("card declined")


class GivesUp(WorkflowEntrypoint):
    async def run(self, event: WorkflowEvent, step: WorkflowStep) -> Any:
        policy = RetryPolicy(limit=2, delay=0.01, backoff="constant")
        try:
            await step.do("charge", always_fails, retries=policy)
        except StepFailedError as exc:
            caught = f"{exc.name}: {exc.message}"
        await step.sleep("replay me", 0.05)
        # On replay the stored failure is raised again without calling the callback.
        try:
            await step.do("charge", always_fails, retries=policy)
        except StepFailedError as exc:
            return {"caught": caught, "second": exc.name}
        return {"caught": caught}


async def test_a_step_that_exhausts_its_retries_raises_into_run_and_stays_failed(
    make_app: Any,
) -> None:
    attempts_seen.clear()
    app = make_app(gives_up=GivesUp)
    async with app.worker(**FAST):
        final = await (await app.workflow("gives_up").create()).wait(timeout=10)
    assert final.status == "complete"
    assert final.output["caught"] == "ValueError: card declined"
    assert attempts_seen.count(1) == 2  # two "charge" steps, each with limit 2 -> 3 attempts
    assert attempts_seen == [1, 2, 3, 1, 2, 3]


class Uncaught(WorkflowEntrypoint):
    async def run(self, event: WorkflowEvent, step: WorkflowStep) -> Any:
        await step.do("ok", lambda: 1)
        await step.do("boom", always_fails, retries={"limit": 0, "delay": 0})
        await step.do("never", lambda: 2)


async def test_an_uncaught_step_failure_errors_the_instance(make_app: Any) -> None:
    app = make_app(uncaught=Uncaught)
    async with app.worker(**FAST):
        instance = await app.workflow("uncaught").create()
        final = await instance.wait(timeout=10)
        details = await instance.describe()
    assert final.status == "errored"
    assert final.error is not None
    assert (final.error.name, final.error.message) == ("ValueError", "card declined")
    assert [s.name for s in details.steps] == ["ok", "boom"]
    assert details.steps[1].status == "failure"


non_retryable_calls: list[int] = []


class NonRetryable(WorkflowEntrypoint):
    async def run(self, event: WorkflowEvent, step: WorkflowStep) -> Any:
        def refuse() -> None:
            non_retryable_calls.append(1)
            raise NonRetryableError("account closed")

        await step.do("refuse", refuse, retries={"limit": 5, "delay": 0})


async def test_non_retryable_error_fails_the_step_at_once(make_app: Any) -> None:
    non_retryable_calls.clear()
    app = make_app(nr=NonRetryable)
    async with app.worker(**FAST):
        final = await (await app.workflow("nr").create()).wait(timeout=10)
    assert final.status == "errored"
    assert final.error is not None
    assert (final.error.name, final.error.message) == ("NonRetryableError", "account closed")
    assert non_retryable_calls == [1]


class Slow(WorkflowEntrypoint):
    async def run(self, event: WorkflowEvent, step: WorkflowStep) -> Any:
        async def slow(ctx: StepContext) -> int:
            if ctx.attempt == 1:
                await asyncio.sleep(5)
            return ctx.attempt

        return await step.do(
            "slow", slow, config=StepConfig(RetryPolicy(limit=1, delay=0.0), timeout=0.2)
        )


async def test_a_timed_out_attempt_is_a_retryable_failure(make_app: Any) -> None:
    app = make_app(slow=Slow)
    async with app.worker(**FAST):
        instance = await app.workflow("slow").create()
        final = await instance.wait(timeout=10)
        step = (await instance.describe()).steps[0]
    assert final.output == 2
    assert step.attempts[0].error is not None
    assert step.attempts[0].error.name == "WorkflowTimeoutError"


class RetryWaits(WorkflowEntrypoint):
    async def run(self, event: WorkflowEvent, step: WorkflowStep) -> Any:
        def fail_once(ctx: StepContext) -> int:
            if ctx.attempt == 1:
                raise RuntimeError("later")
            return ctx.attempt

        return await step.do("once", fail_once, retries={"limit": 1, "delay": "1 second"})


async def test_an_instance_waiting_for_a_retry_reports_waiting_and_holds_no_task(
    make_app: Any,
) -> None:
    app = make_app(retry_waits=RetryWaits)
    async with app.worker(**FAST) as worker:
        instance = await app.workflow("retry_waits").create()
        for _ in range(200):
            if (await instance.status()).status == "waiting":
                break
            await asyncio.sleep(0.01)
        assert (await instance.status()).status == "waiting"
        assert not worker.runs
        step = (await instance.describe()).steps[0]
        assert step.status == "retrying" and step.wake_at is not None
        assert (await instance.wait(timeout=10)).output == 2
