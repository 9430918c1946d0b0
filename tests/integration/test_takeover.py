"""A worker restarted on the same machine takes over a dead worker's instances at once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from perdure import App, StepContext, WorkflowEntrypoint, WorkflowEvent, WorkflowStep
from perdure.engine.owners import certainly_dead, new_owner


class Slow(WorkflowEntrypoint):
    async def run(self, event: WorkflowEvent, step: WorkflowStep) -> object:
        async def slow(ctx: StepContext) -> int:
            if event.payload.get("block"):
                await asyncio.sleep(3600)
            return ctx.attempt

        return await step.do("slow", slow)


WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from perdure import App
    from tests.integration.test_takeover import Slow
    App(database=sys.argv[1], workflows={"slow": Slow}).run_worker(lease_seconds=60)
    """
)


def test_owner_ids_tell_a_dead_local_process_from_a_live_one() -> None:
    me = new_owner()
    assert not certainly_dead(me)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    host, namespace, _, rand = me.rsplit(":", 3)
    assert certainly_dead(f"{host}:{namespace}:{child.pid}:{rand}")
    assert not certainly_dead(f"other-host:{namespace}:{child.pid}:{rand}")
    assert not certainly_dead("some-old-format")


async def test_a_restarted_worker_does_not_wait_out_a_dead_workers_lease(tmp_path: Path) -> None:
    database = str(tmp_path / "takeover.db")
    app = App(database=database, workflows={"slow": Slow})
    async with app:
        instance = await app.workflow("slow").create(params={"block": True})
        env = {**os.environ, "PYTHONPATH": os.getcwd()}
        worker = subprocess.Popen([sys.executable, "-c", WORKER, database], env=env)
        try:
            deadline = time.monotonic() + 20
            while (await instance.status()).status != "running":
                assert time.monotonic() < deadline, "the worker never claimed the instance"
                await asyncio.sleep(0.05)
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait()
        # The lease has 60 s to run; a new worker on this machine sees its owner is dead.
        started = time.monotonic()
        async with app.worker(poll_interval=0.05, lease_seconds=60):
            while (await instance.status()).status != "running" or not app._workers[0].runs:
                assert time.monotonic() - started < 5, "the dead worker's lease was waited out"
                await asyncio.sleep(0.05)
            await instance.terminate()
