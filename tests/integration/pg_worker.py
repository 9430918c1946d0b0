"""A worker process for the PostgreSQL fault tests, and the workflow it runs.

Run as ``python -m tests.integration.pg_worker --database URL [--lease S] [--concurrency N]``
from the repository root; it prints ``up <owner>`` once it claims, and runs until killed.

The workflow ``ledgered`` has five steps. Every execution of a step body writes a row to the
``ledger`` table, a table of the test's own beside perdure's: when it started (the database's
clock), which process ran it, and the lease (owner and epoch) the instance had at that moment;
then, when the body is done, when it ended. A body cut off by a SIGKILL keeps no end. The step
returns its ledger row's id, so the test can tell which execution's result perdure recorded.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import time
from typing import Any

from psycopg_pool import ConnectionPool

import perdure
from perdure import WorkflowEntrypoint, WorkflowEvent, WorkflowStep

STEPS = ("s1", "s2", "s3", "s4", "s5")
LEDGER_SQL = (
    "CREATE TABLE IF NOT EXISTS ledger (id bigserial PRIMARY KEY, instance text NOT NULL, "
    "step text NOT NULL, pid int NOT NULL, owner text, epoch bigint, "
    "started double precision NOT NULL, ended double precision)"
)
# Bodies retry quickly: while the database restarts, their ledger writes fail for a moment.
RETRIES = {"limit": 50, "delay": "200 milliseconds", "backoff": "constant"}

POOL: ConnectionPool[Any] | None = None


def ledger_pool() -> ConnectionPool[Any]:
    assert POOL is not None, "the worker's ledger pool is not open"
    return POOL


def body(instance: str, step: str) -> int:
    """One execution of a step body: on the ledger, with the lease the instance has now."""
    with ledger_pool().connection() as conn:
        row = conn.execute(
            "INSERT INTO ledger (instance, step, pid, owner, epoch, started) "
            "SELECT %s, %s, %s, lease_owner, epoch, extract(epoch FROM clock_timestamp()) "
            "FROM instances WHERE workflow = 'ledgered' AND id = %s RETURNING id",
            (instance, step, os.getpid(), instance),
        ).fetchone()
        assert row is not None
        entry = int(row[0])
        time.sleep(random.uniform(0.01, 0.05))  # the work, during which a kill may land
        conn.execute(
            "UPDATE ledger SET ended = extract(epoch FROM clock_timestamp()) WHERE id = %s",
            (entry,),
        )
    return entry


class Ledgered(WorkflowEntrypoint):
    async def run(self, event: WorkflowEvent, step: WorkflowStep) -> list[int]:
        done = []
        for name in STEPS:
            done.append(
                await step.do(
                    name,
                    lambda name=name: body(event.instance_id, name),  # type: ignore[misc]
                    retries=RETRIES,
                )
            )
        return done


WORKFLOWS: dict[str, type[WorkflowEntrypoint]] = {"ledgered": Ledgered}


async def main(database: str, lease: float, concurrency: int) -> None:
    global POOL
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    POOL = ConnectionPool(
        database, min_size=1, max_size=8, kwargs={"autocommit": True}, open=False, timeout=30
    )
    POOL.open()
    try:
        app = perdure.App(database=database, workflows=WORKFLOWS)
        async with (
            app,
            app.worker(concurrency=concurrency, lease_seconds=lease, poll_interval=0.1) as worker,
        ):
            print("up", worker.owner, flush=True)
            await stop.wait()
    finally:
        POOL.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", required=True)
    parser.add_argument("--lease", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=25)
    options = parser.parse_args()
    asyncio.run(main(options.database, options.lease, options.concurrency))
