"""Every mistake is reported where it is made, with the fix; nothing is half-written."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import perdure
from perdure import (
    App,
    InstanceExistsError,
    InstanceNotFoundError,
    PayloadError,
    PayloadTooLargeError,
    ValidationError,
    WorkflowEntrypoint,
    WorkflowEvent,
    WorkflowNotFoundError,
    WorkflowStep,
)
from perdure.engine import runner
from perdure.store.sqlite import SqliteStore

from .conftest import FAST


class Noop(WorkflowEntrypoint):
    async def run(self, event: WorkflowEvent, step: WorkflowStep) -> Any:
        return await step.do("noop", lambda: None)


async def test_an_unknown_workflow_is_named_with_the_registered_ones(make_app: Any) -> None:
    app = make_app(noop=Noop)
    with pytest.raises(
        WorkflowNotFoundError, match=r"unknown workflow 'nope' \(registered: noop\)"
    ):
        await app.workflow("nope").create()


@pytest.mark.parametrize("bad", ["", "-starts-with-dash", "has space", "a.b", "x" * 101, "é"])
async def test_an_invalid_instance_id_is_refused(make_app: Any, bad: str) -> None:
    app = make_app(noop=Noop)
    with pytest.raises(ValidationError, match="invalid instance id"):
        await app.workflow("noop").create(id=bad)


async def test_a_duplicate_id_is_refused_and_create_batch_skips_existing_ids(make_app: Any) -> None:
    app = make_app(noop=Noop)
    flow = app.workflow("noop")
    await flow.create(id="taken")
    with pytest.raises(InstanceExistsError, match="'taken' already exists"):
        await flow.create(id="taken")
    created = await flow.create_batch([{"id": "taken"}, {"id": "new-1"}, {"params": {"x": 1}}])
    assert [i.id for i in created][:1] == ["new-1"] and len(created) == 2
    with pytest.raises(ValidationError, match="at least one"):
        await flow.create_batch([])
    with pytest.raises(ValidationError, match="at most 100"):
        await flow.create_batch([{} for _ in range(101)])


async def test_params_must_be_json_and_at_most_one_mebibyte(make_app: Any) -> None:
    app = make_app(noop=Noop)
    flow = app.workflow("noop")
    with pytest.raises(
        PayloadError, match=r"params must be JSON-serializable, but holds a set at tags"
    ):
        await flow.create(params={"tags": {1, 2}})
    with pytest.raises(PayloadTooLargeError, match="over the limit"):
        await flow.create(params={"blob": "x" * (1024 * 1024)})
    listed, _ = await flow.list()
    assert listed == []  # nothing half-written


async def test_getting_an_unknown_instance_says_so(make_app: Any) -> None:
    app = make_app(noop=Noop)
    with pytest.raises(InstanceNotFoundError, match="no instance 'ghost'"):
        await app.workflow("noop").get("ghost")
    with pytest.raises(InstanceNotFoundError, match="no instances yet"):
        await app.workflow("noop").get("latest")


async def test_event_types_with_a_dot_are_refused(make_app: Any) -> None:
    app = make_app(noop=Noop)
    instance = await app.workflow("noop").create()
    with pytest.raises(ValidationError, match=r"must not contain '\.'"):
        await instance.send_event("order.paid", {})


def test_workflow_classes_are_checked_when_registered() -> None:
    class NotAWorkflow:
        pass

    class NoRun(WorkflowEntrypoint):
        pass

    with pytest.raises(perdure.errors.ConfigError, match="not a subclass"):
        App(workflows={"x": NotAWorkflow})  # type: ignore[dict-item]
    with pytest.raises(perdure.errors.ConfigError, match="must define async def run"):
        App(workflows={"x": NoRun})
    with pytest.raises(perdure.errors.ConfigError, match="registered twice"):
        App(workflows=[perdure.Workflow("x", Noop), perdure.Workflow("x", Noop)])
    with pytest.raises(perdure.errors.ConfigError, match="durability"):
        SqliteStore("x.db", durability="sometimes")


class BadStep(WorkflowEntrypoint):
    async def run(self, event: WorkflowEvent, step: WorkflowStep) -> Any:
        kind = event.payload["kind"]
        if kind == "long name":
            await step.do("x" * 257, lambda: 1)
        elif kind == "control":
            await step.do("bad\nname", lambda: 1)
        elif kind == "duration":
            await step.sleep("nap", "3 fortnights")
        elif kind == "past":
            await step.sleep_until("alarm", datetime.now(UTC) - timedelta(hours=1))
        elif kind == "unknown key":
            await step.do("x", lambda: 1, retries={"limit": 1, "tries": 3})
        elif kind == "negative limit":
            await step.do("x", lambda: 1, retries={"limit": -1})
        elif kind == "zero timeout":
            await step.do("x", lambda: 1, timeout=0)
        elif kind == "not json":
            await step.do("make widget", lambda: {"when": datetime.now(UTC)}, retries={"limit": 3})
        elif kind == "too big":
            await step.do("huge", lambda: "x" * (1024 * 1024 + 1))
        elif kind == "event type":
            await step.wait_for_event("w", type="a.b")
        return "unreachable"


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("long name", "the limit is 256"),
        ("control", "control characters"),
        ("duration", "unknown unit 'fortnights'"),
        ("past", "is in the past"),
        ("unknown key", r"unknown retries key\(s\) \['tries'\]"),
        ("negative limit", "between 0 and 10000"),
        ("zero timeout", "timeout must be greater than zero"),
        (
            "not json",
            r"result of step 'make widget' must be JSON-serializable, but holds a datetime",
        ),
        ("too big", "over the limit of 1,048,576 bytes"),
        ("event type", "must not contain '.'"),
    ],
)
async def test_mistakes_inside_run_error_the_instance_with_the_fix(
    make_app: Any, kind: str, error: str
) -> None:
    app = make_app(bad=BadStep)
    async with app.worker(**FAST):
        final = await (await app.workflow("bad").create(params={"kind": kind})).wait(10)
    assert final.status == "errored"
    assert final.error is not None

    assert re.search(error, final.error.message), final.error.message


class ManySteps(WorkflowEntrypoint):
    async def run(self, event: WorkflowEvent, step: WorkflowStep) -> Any:
        for n in range(10):
            await step.do(f"s{n}", lambda: 1)
        return "done"


async def test_more_steps_than_the_limit_errors_the_instance(
    make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "MAX_STEPS", 5)
    app = make_app(many=ManySteps)
    async with app.worker(**FAST):
        instance = await app.workflow("many").create()
        final = await instance.wait(10)
        steps = (await instance.describe()).steps
    assert final.status == "errored"
    assert final.error is not None and "limit of 5 steps" in final.error.message
    assert len(steps) == 5
