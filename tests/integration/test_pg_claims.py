"""Two workers race for the same runnable instances, thousands of times: never both get one.

Each worker is a store of its own (its own writer thread and connection), so the two claims
are two transactions running at the same moment on the server, as on two machines. Each
contest is fought twice: over new instances, and over the same instances once their leases
have run out (the takeover after a crash). A worker that lost an instance cannot write to it.
"""

from __future__ import annotations

import asyncio
import json

import psycopg
import pytest

from perdure.errors import LeaseLostError
from perdure.store.base import Claim, NewInstance, StepWrite
from perdure.store.postgres import PostgresStore

pytestmark = pytest.mark.postgres

ROUNDS = 1000
PER_ROUND = 8  # 2,000 contests over 16,000 instance claims


def step(key: str) -> StepWrite:
    return StepWrite(
        key=key,
        name=key.split("#")[0],
        occurrence=1,
        kind="do",
        status="success",
        seq=1,
        config=None,
        attempts="[]",
        output=json.dumps(1),
        error=None,
        started_at=0.0,
        ended_at=0.0,
        wake_at=None,
    )


def ids(claims: list[Claim]) -> set[str]:
    return {claim.instance.id for claim in claims}


async def test_two_workers_never_claim_the_same_instance(postgres_database: str) -> None:
    a, b = PostgresStore(postgres_database), PostgresStore(postgres_database)
    await asyncio.gather(a.open(), b.open())
    admin = psycopg.connect(postgres_database, autocommit=True)
    try:
        await a.register_workflow("race", "tests:Race", "RACE", "v1", None)
        contests = split = stale_writes = 0
        for r in range(ROUNDS):
            wanted = {f"r{r}-{k}" for k in range(PER_ROUND)}
            await a.create_instances(
                "race", "v1", [NewInstance(i, "{}") for i in sorted(wanted)], skip_existing=False
            )
            # Runnable instances: both claim at once.
            got_a, got_b = await asyncio.gather(
                a.claim("A", PER_ROUND, 30, ["race"]), b.claim("B", PER_ROUND, 30, ["race"])
            )
            assert not ids(got_a) & ids(got_b), f"round {r}: both claimed {ids(got_a) & ids(got_b)}"
            assert ids(got_a) | ids(got_b) == wanted
            contests += 1
            split += bool(got_a) and bool(got_b)
            first = {c.instance.id: c.lease for c in got_a + got_b}
            # Their leases run out (both workers "died"): both race to take them over.
            admin.execute(
                "UPDATE instances SET lease_expires_at = 0 WHERE workflow = 'race' "
                "AND status = 'running'"
            )
            got_a, got_b = await asyncio.gather(
                a.claim("A", PER_ROUND, 30, ["race"]), b.claim("B", PER_ROUND, 30, ["race"])
            )
            assert not ids(got_a) & ids(got_b), (
                f"round {r}: both took over {ids(got_a) & ids(got_b)}"
            )
            assert ids(got_a) | ids(got_b) == wanted
            contests += 1
            split += bool(got_a) and bool(got_b)
            for claim in got_a + got_b:
                assert claim.lease.epoch == first[claim.instance.id].epoch + 1
            if r % 50 == 0:
                # The worker that held an instance before the takeover can no longer write it.
                old = first[min(first)]
                with pytest.raises(LeaseLostError):
                    await (a if old.owner == "A" else b).save_step(old, step("late#1"))
                stale_writes += 1
            admin.execute("UPDATE instances SET status = 'complete' WHERE workflow = 'race'")
        # The races were real: in some contests each worker won part of the same instances.
        assert split >= 10, f"only {split} of {contests} contests were shared"
        assert stale_writes == ROUNDS // 50
        held = admin.execute("SELECT count(*) FROM steps WHERE key = 'late#1'").fetchone()
        assert held == (0,)
    finally:
        admin.close()
        await asyncio.gather(a.close(), b.close())
