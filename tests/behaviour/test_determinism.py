"""When the code changes under a running instance, it errors instead of mixing two histories."""

from __future__ import annotations

from typing import Any

from perdure import App, WorkflowEntrypoint, WorkflowEvent, WorkflowStep

from .conftest import FAST, status_is


class Before(WorkflowEntrypoint):
    async def run(self, event: WorkflowEvent, step: WorkflowStep) -> Any:
        await step.do("charge card", lambda: "charged")
        await step.wait_for_event("shipped", type="shipped")
        return "ok"


class RenamedStep(WorkflowEntrypoint):
    async def run(self, event: WorkflowEvent, step: WorkflowStep) -> Any:
        await step.do("charge the card", lambda: "charged again")
        await step.wait_for_event("shipped", type="shipped")
        return "ok"


class ChangedKind(WorkflowEntrypoint):
    async def run(self, event: WorkflowEvent, step: WorkflowStep) -> Any:
        await step.sleep("charge card", 0.01)
        await step.wait_for_event("shipped", type="shipped")
        return "ok"


async def _run_then_swap(database_url: str, new_code: type[WorkflowEntrypoint]) -> Any:
    old = App(database=database_url, workflows={"order": Before})
    async with old, old.worker(**FAST):
        instance = await old.workflow("order").create(id="o1")
        await status_is(instance, "waiting")
    new = App(database=database_url, workflows={"order": new_code})
    async with new, new.worker(**FAST):
        instance = await new.workflow("order").get("o1")
        await instance.send_event("shipped", {})
        final = await instance.wait(10)
        details = await instance.describe()
    return final, details


async def test_a_renamed_step_errors_the_instance_naming_both_steps(database_url: str) -> None:
    final, details = await _run_then_swap(database_url, RenamedStep)
    assert final.status == "errored"
    assert final.error.name == "NonDeterminismError"
    assert "'charge the card'" in final.error.message and "'charge card'" in final.error.message
    assert [s.output for s in details.steps if s.kind == "do"] == ["charged"]


async def test_a_step_of_another_kind_at_the_same_key_errors_the_instance(
    database_url: str,
) -> None:
    final, _ = await _run_then_swap(database_url, ChangedKind)
    assert final.status == "errored"
    assert final.error.name == "NonDeterminismError"
    assert "sleep" in final.error.message and "'charge card'" in final.error.message
