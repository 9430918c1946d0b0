"""A model of the instance lifecycle, checked against the real engine by hypothesis.

Random sequences of create, pause, resume, terminate, restart, send_event and worker restarts
run against a real database and worker; after each, the instance settles and its status must
match the model. Terminal states refuse everything but restart; a step's result never changes
within one run of the history; each event is consumed at most once.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from perdure import (
    App,
    Client,
    InvalidTransitionError,
    WorkflowEntrypoint,
    WorkflowEvent,
    WorkflowStep,
)

a_calls: dict[str, int] = {}


def call_a(instance_id: str) -> int:
    a_calls[instance_id] = a_calls.get(instance_id, 0) + 1
    return a_calls[instance_id]


class Gate(WorkflowEntrypoint):
    async def run(self, event: WorkflowEvent, step: WorkflowStep) -> Any:
        a = await step.do("a", lambda: call_a(event.instance_id))
        go = await step.wait_for_event("go", type="go", timeout="1 hour")
        b = await step.do("b", lambda: go.payload)
        return {"a": a, "b": b}


class Lifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.model: dict[str, dict[str, Any]] = {}
        self.counter = 0
        self.prefix = uuid.uuid4().hex[:8]  # every example shares the database

    @initialize()
    def open(self) -> None:
        url = DATABASE["url"]
        self.app = App(database=url, workflows={"gate": Gate})
        self.client = Client(self.app).__enter__()
        self.flow = self.client.workflow("gate")
        self._start_worker()

    def _start_worker(self) -> None:
        self.worker_cm = self.app.worker(poll_interval=0.02, lease_seconds=5)
        self.client._portal.call(self.worker_cm.__aenter__())

    def teardown(self) -> None:
        if hasattr(self, "client"):
            self.client._portal.call(self.worker_cm.__aexit__(None, None, None))
            self.client.close()

    def _settle(self, instance_id: str, expected: str) -> str:
        """Wait for the worker to bring the instance to ``expected`` (or give up after 10 s)."""
        deadline = time.monotonic() + 10
        instance = self.flow.get(instance_id)
        while True:
            status = instance.status().status
            if status == expected or time.monotonic() > deadline:
                return status
            time.sleep(0.01)

    def _expected(self, m: dict[str, Any]) -> str:
        if m["state"] in ("terminated", "complete", "paused"):
            return str(m["state"])
        return "complete" if m["pending"] > 0 else "waiting"

    def _after(self, instance_id: str) -> None:
        m = self.model[instance_id]
        if m["state"] == "active" and m["pending"] > 0:
            m["state"] = "complete"
            m["pending"] -= 1
        expected = self._expected(m)
        status = self._settle(instance_id, expected)
        assert status == expected, (instance_id, status, m)

    ids = st.runner().flatmap(lambda self: st.sampled_from(sorted(self.model)))

    @precondition(lambda self: len(self.model) < 3)
    @rule()
    def create(self) -> None:
        self.counter += 1
        instance_id = f"{self.prefix}-{self.counter}"
        self.flow.create(id=instance_id)
        self.model[instance_id] = {"state": "active", "pending": 0, "generation": 1}
        self._after(instance_id)

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data())
    def send_event(self, data: st.DataObject) -> None:
        instance_id = data.draw(st.sampled_from(sorted(self.model)))
        m = self.model[instance_id]
        instance = self.flow.get(instance_id)
        if m["state"] in ("terminated", "complete"):
            with pytest.raises(InvalidTransitionError):
                instance.send_event("go", m["generation"])
            return
        instance.send_event("go", m["generation"])
        m["pending"] += 1
        self._after(instance_id)

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data(), action=st.sampled_from(["pause", "resume", "terminate", "restart"]))
    def act(self, data: st.DataObject, action: str) -> None:
        instance_id = data.draw(st.sampled_from(sorted(self.model)))
        m = self.model[instance_id]
        instance = self.flow.get(instance_id)
        finished = m["state"] in ("terminated", "complete")
        if action != "restart" and finished:
            with pytest.raises(InvalidTransitionError):
                getattr(instance, action)()
            return
        getattr(instance, action)()
        if action == "pause":
            m["state"] = "paused"
        elif action == "resume":
            m["state"] = "active"
        elif action == "terminate":
            m["state"] = "terminated"
        else:
            m.update(state="active", pending=0, generation=m["generation"] + 1)
        self._after(instance_id)

    @rule()
    def restart_worker(self) -> None:
        self.client._portal.call(self.worker_cm.__aexit__(None, None, None))
        self._start_worker()
        for instance_id in self.model:
            self._after(instance_id)

    @invariant()
    def history_is_consistent(self) -> None:
        for instance_id, m in self.model.items():
            details = self.flow.get(instance_id).describe()
            consumed = [e for e in details.events if e.consumed_by]
            assert len(consumed) <= 1
            assert a_calls.get(instance_id, 0) <= m["generation"]
            if details.status == "complete":
                assert details.output["a"] == a_calls[instance_id] == m["generation"]
                assert details.output["b"] == m["generation"]
                assert [s.status for s in details.steps] == ["success"] * 3


DATABASE: dict[str, str] = {}


def test_the_lifecycle_matches_its_model(database_url: str) -> None:
    DATABASE["url"] = database_url
    run_state_machine_as_test(
        Lifecycle,
        settings=settings(
            max_examples=int(os.environ.get("PERDURE_MODEL_EXAMPLES", "40")),
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
