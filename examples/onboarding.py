"""A real workflow, end to end, on the embedded SQLite default.

Run it with `scripts/demo` (or `python examples/onboarding.py`). It creates three instances of an
onboarding workflow, runs a worker, approves two of them, lets the third time out, and prints
each instance's step-by-step history as stored in ./perdure-demo.db.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime
from typing import Any

from perdure import App, StepContext, WorkflowEntrypoint, WorkflowEvent, WorkflowStep
from perdure.errors import WorkflowTimeoutError

USERS = {1: "ada@example.com", 2: "grace@example.com", 3: "alan@example.com"}


def load_user(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "email": USERS[user_id]}


def send_email(ctx: StepContext, to: str) -> dict[str, Any]:
    if ctx.attempt == 1:  # the mail server is flaky: the first attempt always fails
        raise ConnectionError("mail server did not answer")
    return {"to": to, "sent_on_attempt": ctx.attempt, "idempotency_key": ctx.idempotency_key}


class Onboarding(WorkflowEntrypoint):
    async def run(self, event: WorkflowEvent, step: WorkflowStep) -> Any:
        user = await step.do("load user", lambda: load_user(event.payload["user_id"]))
        await step.sleep("give them a moment", "2 seconds")
        try:
            reply = await step.wait_for_event(
                "wait for approval",
                type="approval",
                timeout=event.payload.get("timeout", "5 seconds"),
            )
        except WorkflowTimeoutError:
            return {"approved": False, "user": user["email"]}
        receipt = await step.do(
            "send welcome email",
            lambda ctx: send_email(ctx, user["email"]),
            retries={"limit": 3, "delay": "500 milliseconds", "backoff": "exponential"},
            timeout="2 minutes",
        )
        return {"approved": reply.payload["ok"], "email": receipt}


def when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S.%f")[:-3]


def show(details: Any) -> None:
    print(f"\n{details.workflow}/{details.id}  status={details.status}  version={details.version}")
    print(f"  params={json.dumps(details.params)}  output={json.dumps(details.output)}")
    for s in details.steps:
        extra = f" wakes {when(s.wake_at)}" if s.kind != "do" else ""
        print(f"  {s.kind:<5} {s.name!r:<24} {s.status:<8} attempts={len(s.attempts)}{extra}")
        for a in s.attempts:
            error = f"  {a.error.name}: {a.error.message}" if a.error else "  ok"
            print(f"        attempt {a.attempt} {when(a.start)} -> {when(a.end)}{error}")
        if s.output is not None:
            print(f"        -> {json.dumps(s.output)[:100]}")


async def main() -> None:
    database = os.environ.get("PERDURE_DATABASE", "perdure-demo.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(database + suffix) and database.endswith("perdure-demo.db"):
            os.remove(database + suffix)
    app = App(database=database, workflows={"onboarding": Onboarding})
    async with app, app.worker():
        flow = app.workflow("onboarding")
        instances = [
            await flow.create(id=f"user-{n}", params={"user_id": n, "timeout": "4 seconds"})
            for n in USERS
        ]
        print(
            f"created {len(instances)} instances in {database}; they sleep, then wait for approval"
        )
        await asyncio.sleep(0.5)
        print("statuses:", {i.id: (await i.status()).status for i in instances})
        await instances[0].send_event("approval", {"ok": True})  # sent early: kept until the wait
        await asyncio.sleep(2.5)
        await instances[1].send_event("approval", {"ok": True})
        results = [await i.wait(timeout=30) for i in instances]
        for instance, result in zip(instances, results, strict=True):
            print(f"{instance.id}: {result.status} {json.dumps(result.output)}")
        for instance in instances:
            show(await instance.describe())
    if any(r.status != "complete" for r in results):
        sys.exit(1)


if __name__ == "__main__":
    asyncio.run(main())
