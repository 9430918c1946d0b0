"""Many workers on one PostgreSQL database, killed at random, and the database itself crashing.

Worker processes (tests/integration/pg_worker.py) run a five-step workflow whose step bodies
write to a ledger table: which process ran which body, under which lease, from when to when.
From that ledger and perdure's own tables each test proves that every instance completed,
every step's result was recorded exactly once (a body ran again only when a kill cut it off),
no two processes ever ran the same instance at the same time, and no lease was left behind.
Each test also checks that its faults really happened, so a run where they missed fails.
Set PERDURE_FAULT_SEED to replay a run's kill schedule; the seed is in the failure message.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from pathlib import Path

import pytest

import perdure
from tests.integration.pg_support import (
    Fleet,
    check_ledger,
    completed,
    create_ledger,
    own_cluster,
    restart_immediate,
)
from tests.integration.pg_worker import WORKFLOWS

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


async def create_instances(url: str, count: int) -> None:
    async with perdure.App(database=url, workflows=WORKFLOWS) as app:
        flow = app.workflow("ledgered")
        for start in range(0, count, 100):
            await flow.create_batch(
                [{"id": f"i{n}"} for n in range(start, min(count, start + 100))]
            )


async def wait_all(url: str, count: int, fleet: Fleet, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while completed(url) < count:
        fleet.assert_alive()
        assert time.monotonic() < deadline, f"only {completed(url)} of {count} completed in time"
        await asyncio.sleep(0.2)


async def test_four_workers_killed_at_random_lose_and_duplicate_nothing(
    postgres_database: str, tmp_path: Path
) -> None:
    seed = int(os.environ.get("PERDURE_FAULT_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    url, instances = postgres_database, 1000
    create_ledger(url)
    await create_instances(url, instances)
    # Ten instances at a time per worker, so the run lasts long enough for many kills.
    fleet = Fleet(url, tmp_path, lease=2.0, concurrency=10)
    try:
        for _ in range(4):
            fleet.start()
        # A SIGKILL every few hundred milliseconds, the victim replaced at once, for as long
        # as there is work (at most 25 s), then the survivors finish.
        kill_until = time.monotonic() + 25
        while time.monotonic() < kill_until and completed(url) < instances:
            await asyncio.sleep(rng.uniform(0.15, 0.45))
            fleet.assert_alive()
            fleet.kill_one(rng)
            fleet.start()
        await wait_all(url, instances, fleet, timeout=60)
    finally:
        fleet.stop()
    facts = check_ledger(url, instances, fleet.kills)
    context = f"seed {seed}: {len(fleet.kills)} kills, {facts}"
    assert len(fleet.kills) >= 15, context
    assert facts.cut_off >= 5, f"kills should have cut step bodies off; {context}"
    assert facts.redone >= 5, f"cut-off steps should have run again; {context}"


async def test_every_instance_completes_when_postgresql_crashes_mid_run(tmp_path: Path) -> None:
    instances = 300
    with own_cluster() as (url, env):
        create_ledger(url)
        await create_instances(url, instances)
        fleet = Fleet(url, tmp_path, lease=2.0, concurrency=25)
        try:
            for _ in range(2):
                fleet.start()
            crashes: list[float] = []
            while completed(url) < instances * 0.3:
                fleet.assert_alive()
                await asyncio.sleep(0.05)
            for _ in range(2):  # crash it twice, with work in flight each time
                before = completed(url)
                crashes.append(time.time())
                restart_immediate(env)
                assert before < instances, "the run ended before the crash: make it longer"
                await asyncio.sleep(1.0)
            await wait_all(url, instances, fleet, timeout=60)
        finally:
            fleet.stop()
        facts = check_ledger(url, instances, fleet.kills, crashes)
    assert len(crashes) == 2 and facts.executions >= instances * 5, facts
