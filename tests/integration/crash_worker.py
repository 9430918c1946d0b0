"""A worker process for the crash tests, and the workflow it runs.

Run as ``python -m tests.integration.crash_worker --database DB --ledger LEDGER [--lease S]``
from the repository root. The worker runs until it is killed.

Every execution of a step body appends to the ledger, a file outside perdure's database, so the
test can count how often each body really ran: ``start`` when a body begins, ``end`` when it
returns, ``seen`` when ``run`` gets a step's result back (the step is then durably recorded),
``ready`` when the worker is up, and ``selfkill`` just before a planned SIGKILL. Lines are JSON,
appended with O_APPEND (atomic between processes) and fsync'd.

An instance's params can plan kills at named points, each fired once (a marker file remembers):
``{"die": {"in_body": ["s2"], "after_commit": ["s3"]}}`` kills the worker inside the body of s2,
and right after s3 was recorded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import perdure
from perdure import StepContext, WorkflowEntrypoint, WorkflowEvent, WorkflowStep


class Ledger:
    """An append-only file of JSON lines that survives the process being killed."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.markers = f"{path}.markers"
        os.makedirs(self.markers, exist_ok=True)
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def write(self, event: str, instance: str = "", step: str = "", **extra: Any) -> None:
        record = {"e": event, "i": instance, "s": step, "p": os.getpid(), "t": time.time(), **extra}
        os.write(self.fd, (json.dumps(record) + "\n").encode())
        os.fsync(self.fd)

    def first_time(self, *parts: str) -> bool:
        """True once per marker name, across processes and restarts."""
        try:
            fd = os.open(os.path.join(self.markers, ".".join(parts)), os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            return False
        os.close(fd)
        return True


LEDGER: Ledger | None = None


def ledger() -> Ledger:
    if LEDGER is None:
        raise RuntimeError("the crash workflow only runs inside crash_worker's main()")
    return LEDGER


def die(instance: str, step: str, point: str) -> None:
    ledger().write("selfkill", instance, step, point=point)
    os.kill(os.getpid(), signal.SIGKILL)


def body(instance: str, name: str, params: dict[str, Any]) -> Callable[[StepContext], str]:
    """A step body that records each execution and holds for a while, so kills land inside."""

    def run(ctx: StepContext) -> str:
        book = ledger()
        book.write("start", instance, name, a=ctx.attempt)
        time.sleep(params["hold"] / 2)
        if name in params["die"].get("in_body", []) and book.first_time(instance, "in_body", name):
            die(instance, name, "in_body")
        time.sleep(params["hold"] / 2)
        book.write("end", instance, name, a=ctx.attempt)
        return f"{instance}/{name}"

    return run


class Chaos(WorkflowEntrypoint):
    """Five steps, a sleep and an event wait: every kind of checkpoint."""

    async def run(self, event: WorkflowEvent, step: WorkflowStep) -> dict[str, Any]:
        params = event.payload
        me = event.instance_id
        values: list[str] = []

        async def do(name: str) -> None:
            values.append(await step.do(name, body(me, name, params)))
            ledger().write("seen", me, name)
            if name in params["die"].get("after_commit", []) and ledger().first_time(
                me, "after_commit", name
            ):
                die(me, name, "after_commit")

        for name in ("s1", "s2", "s3"):
            await do(name)
        await step.sleep("nap", params["nap"])
        await do("s4")
        approval = await step.wait_for_event("approval", type="approval", timeout="10 minutes")
        await do("s5")
        return {"values": values, "approval": approval.payload}


STEP_NAMES = ["s1", "s2", "s3", "nap", "s4", "approval", "s5"]
BODY_STEPS = ["s1", "s2", "s3", "s4", "s5"]


async def main(argv: list[str] | None = None) -> None:
    global LEDGER
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", required=True)
    parser.add_argument("--ledger", required=True)
    parser.add_argument("--lease", type=float, default=10.0)
    parser.add_argument("--poll", type=float, default=0.25)
    parser.add_argument("--concurrency", type=int, default=1000)
    args = parser.parse_args(argv)
    LEDGER = Ledger(args.ledger)
    app = perdure.App(database=args.database, workflows={"chaos": Chaos})
    async with (
        app,
        app.worker(concurrency=args.concurrency, lease_seconds=args.lease, poll_interval=args.poll),
    ):
        LEDGER.write("ready")
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
