"""Every instance keeps a history the CLI, the HTTP API and the dashboard read."""

from __future__ import annotations

import time
from typing import Any

from perdure import App, Client, StepContext, WorkflowEntrypoint, WorkflowEvent, WorkflowStep

from .conftest import FAST


class Report(WorkflowEntrypoint):
    async def run(self, event: WorkflowEvent, step: WorkflowStep) -> Any:
        data = await step.do("fetch", lambda: {"rows": 3})

        def shaky(ctx: StepContext) -> str:
            if ctx.attempt == 1:
                raise TimeoutError("upstream slow")
            return "ok"

        await step.do("shaky", shaky, retries={"limit": 2, "delay": 0.05, "backoff": "linear"})
        await step.sleep("cool down", 0.1)
        got = await step.wait_for_event("confirm", type="confirm", timeout="1 hour")
        return {"rows": data["rows"], "confirmed": got.payload}


async def test_describe_shows_steps_in_order_with_attempts_outputs_and_wake_up_times(
    make_app: Any,
) -> None:
    app = make_app(report=Report)
    started = time.time()
    async with app.worker(**FAST):
        instance = await app.workflow("report").create(id="r1", params={"who": "ops"})
        await instance.send_event("confirm", "yes")
        final = await instance.wait(10)
        details = await instance.describe()
    assert final.status == "complete"
    assert (details.workflow, details.id, details.status) == ("report", "r1", "complete")
    assert details.params == {"who": "ops"} and details.output == {"rows": 3, "confirmed": "yes"}
    assert details.version and len(details.version) == 12
    assert details.created_at >= started - 1
    assert details.started_at is not None and details.ended_at is not None
    assert details.ended_at >= details.started_at
    assert [(s.name, s.kind, s.status) for s in details.steps] == [
        ("fetch", "do", "success"),
        ("shaky", "do", "success"),
        ("cool down", "sleep", "success"),
        ("confirm", "wait", "success"),
    ]
    fetch, shaky, sleep, confirm = details.steps
    assert fetch.output == {"rows": 3} and len(fetch.attempts) == 1
    assert fetch.config == {
        "retries": {"limit": 5, "delay": 10.0, "backoff": "exponential"},
        "timeout": 600.0,
    }
    assert [a.error.name if a.error else None for a in shaky.attempts] == ["TimeoutError", None]
    assert sleep.wake_at is not None and sleep.start is not None
    assert 0.05 < sleep.wake_at - sleep.start < 0.5
    assert confirm.output["payload"] == "yes" and confirm.wake_at is None
    shape = details.to_json()
    assert shape["steps"][1]["attempts"][0]["error"]["name"] == "TimeoutError"
    assert shape["steps"][2]["wake_at"].endswith("Z")
    assert shape["step_count"] == 4


async def test_instances_are_listed_newest_first_page_by_page(make_app: Any) -> None:
    app = make_app(report=Report)
    flow = app.workflow("report")
    for n in range(7):
        await flow.create(id=f"i{n}")
    first, cursor = await flow.list(limit=3)
    second, cursor2 = await flow.list(limit=3, cursor=cursor)
    third, cursor3 = await flow.list(limit=3, cursor=cursor2)
    assert [i.id for i in first + second + third] == [f"i{n}" for n in range(6, -1, -1)]
    assert cursor3 is None
    queued, _ = await flow.list(status="queued")
    assert len(queued) == 7
    info = await app.describe_workflow("report")
    assert info.counts == {"queued": 7} and info.binding == "REPORT"


def test_the_sync_client_does_what_the_async_one_does(database_url: str) -> None:
    app = App(database=database_url, workflows={"report": Report})
    with Client(app) as client:
        flow = client.workflow("report")
        instance = flow.create(id="sync-1")
        assert instance.status().status == "queued"
        instance.send_event("confirm", 1)
        assert flow.get("latest").id == "sync-1"
        assert [w.name for w in client.list_workflows()] == ["report"]
        instance.terminate()
        assert instance.wait(timeout=5).status == "terminated"


async def test_the_faster_durability_mode_runs_the_same_workflows(tmp_path: Any) -> None:
    app = App(
        database=str(tmp_path / "fast.db"), workflows={"report": Report}, durability="process"
    )
    async with app, app.worker(**FAST):
        instance = await app.workflow("report").create()
        await instance.send_event("confirm", True)
        assert (await instance.wait(10)).status == "complete"
