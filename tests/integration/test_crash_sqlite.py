"""kill -9 of real worker processes on a SQLite file: nothing recorded is lost or redone.

The workers are separate processes (tests/integration/crash_worker.py) running a workflow of five
steps, a sleep and an event wait. Every step body appends to a ledger outside perdure, so these
tests see each real execution of a body and compare it with what perdure recorded:

- every instance completes with the expected output, every step recorded exactly once;
- a step that was recorded never runs again; a step body runs again only when a kill cut it off
  (at-least-once), and every body cut off mid-callback does run again;
- sleeps that came due while no worker was running fire as soon as a worker starts;
- two workers on one file never run the same instance at once, and a survivor takes over a dead
  worker's instances once its lease runs out.

Each test also asserts that its faults really happened (kills inside step bodies, right after a
step was recorded, during sleeps), so a run where the kills all missed fails instead of passing.
Set PERDURE_CRASH_SEED to replay a run's random kill schedule; the seed is in the failure message.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import perdure
from tests.integration.crash_worker import BODY_STEPS, STEP_NAMES, Chaos

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Kill:
    pid: int
    at: float
    how: str  # random | in_body | after_commit | watched_body | during_sleep


@dataclass
class Cluster:
    """Worker processes on one SQLite file, the shared ledger, and the record of every kill."""

    tmp: Path
    lease: float
    concurrency: int = 1000
    db: str = ""
    ledger: Path = field(default_factory=Path)
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    kills: list[Kill] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.db = str(self.tmp / "perdure.db")
        self.ledger = self.tmp / "ledger.jsonl"
        self.ledger.touch()

    def spawn(self) -> int:
        log = self.tmp / f"worker-{len(self.logs)}.log"
        self.logs.append(log)
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.integration.crash_worker",
                    "--database",
                    self.db,
                    "--ledger",
                    str(self.ledger),
                    "--lease",
                    str(self.lease),
                    "--poll",
                    "0.1",
                    "--concurrency",
                    str(self.concurrency),
                ],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.procs[proc.pid] = proc
        return proc.pid

    def alive(self, pid: int) -> bool:
        return self.procs[pid].poll() is None

    def kill(self, pid: int, how: str) -> bool:
        """SIGKILL worker ``pid``; False if it had just killed itself at a planned point."""
        proc = self.procs[pid]
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            at = time.time()
            proc.wait()
            if not any(r["e"] == "selfkill" and r["p"] == pid for r in self.records()):
                self.kills.append(Kill(pid, at, how))
                return True
        self.reap(pid)
        return False

    def reap(self, pid: int) -> None:
        """Record a worker that killed itself at a planned point."""
        proc = self.procs[pid]
        code = proc.wait()
        assert code == -signal.SIGKILL, f"worker {pid} exited with {code}:\n{self.log_tail()}"
        if any(k.pid == pid for k in self.kills):
            return
        last = [r for r in self.records() if r["p"] == pid and r["e"] == "selfkill"]
        assert last, f"worker {pid} died without a planned kill:\n{self.log_tail()}"
        self.kills.append(Kill(pid, last[-1]["t"], last[-1]["point"]))

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait()

    def records(self) -> list[dict[str, Any]]:
        lines = self.ledger.read_text().splitlines()
        out = []
        for number, line in enumerate(lines):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # only the very last line can be cut short by a kill
            record["n"] = number
            out.append(record)
        return out

    def log_tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in self.logs[-3:])

    async def wait_ready(self, pid: int) -> None:
        await self.until(
            lambda: any(r["e"] == "ready" and r["p"] == pid for r in self.records()),
            f"worker {pid} to start",
            pid=pid,
        )

    async def until(
        self,
        check: Callable[[], bool | Awaitable[bool]],
        what: str,
        *,
        timeout: float = 20.0,
        pid: int | None = None,
    ) -> bool:
        """Poll ``check`` (sync or async); False if worker ``pid`` died first (a planned kill)."""
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if not isinstance(result, bool):
                result = await result
            if result:
                return True
            if pid is not None and not self.alive(pid):
                self.reap(pid)
                return False
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}\n{self.log_tail()}")
            await asyncio.sleep(0.02)


@contextmanager
def cluster(tmp: Path, lease: float, concurrency: int = 1000) -> Iterator[Cluster]:
    c = Cluster(tmp, lease, concurrency)
    try:
        yield c
    finally:
        c.stop_all()


def params(*, hold: float, nap: float = 0.3, die: dict[str, list[str]] | None = None) -> Any:
    return {"hold": hold, "nap": nap, "die": die or {}}


def expected_output(instance: str, approval: Any) -> dict[str, Any]:
    return {"values": [f"{instance}/{s}" for s in BODY_STEPS], "approval": approval}


def executions(records: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Body executions per (instance, step), in ledger order, each with its end record if any."""
    runs: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        key = (r["i"], r["s"])
        if r["e"] == "start":
            runs[key].append({**r, "end": None})
        elif r["e"] == "end":
            match = [x for x in runs[key] if x["p"] == r["p"] and x["a"] == r["a"]]
            assert match and match[-1]["end"] is None, f"an end without its start: {r}"
            match[-1]["end"] = r
    return runs


async def assert_recorded_once(app: perdure.App, approvals: dict[str, Any]) -> Counter[str]:
    """Every instance completed with its output; one successful row per step in its history."""
    lost_attempts: Counter[str] = Counter()
    for instance, approval in approvals.items():
        handle = await app.workflow("chaos").get(instance)
        status = await handle.status()
        assert status.status == "complete", f"{instance}: {status}"
        assert status.output == expected_output(instance, approval)
        steps = (await handle.describe()).steps
        assert [(s.name, s.count) for s in steps] == [(n, 1) for n in STEP_NAMES], instance
        assert [s.status for s in steps] == ["success"] * len(STEP_NAMES), instance
        for s in steps:
            if s.kind == "do":
                assert s.output == f"{instance}/{s.name}"
                assert s.attempts and s.attempts[-1].error is None
                lost_attempts.update(a.error.name for a in s.attempts[:-1] if a.error is not None)
    return lost_attempts


def assert_at_least_once(c: Cluster, instances: list[str]) -> dict[str, int]:
    """A recorded step never runs again; a step re-runs only when a kill cut it off."""
    records = c.records()
    runs = executions(records)
    killed = {k.pid for k in c.kills}
    seen_at: dict[tuple[str, str], int] = {}
    for r in records:
        if r["e"] == "seen":
            seen_at.setdefault((r["i"], r["s"]), r["n"])
    extra = cut_mid_callback = 0
    for instance in instances:
        for name in BODY_STEPS:
            key = (instance, name)
            tries = runs[key]
            assert tries, f"{key} never ran"
            assert key in seen_at, f"{key} never returned its result to run()"
            late = [t for t in tries if t["n"] > seen_at[key]]
            assert not late, f"{key} ran again after it was recorded: {late}"
            pids = Counter(t["p"] for t in tries)
            assert max(pids.values()) == 1, f"{key} ran twice in one live worker: {tries}"
            *earlier, last = tries
            assert last["end"] is not None, f"{key}: the execution that counted never ended"
            for t in earlier:
                assert t["p"] in killed, f"{key} re-ran though worker {t['p']} was not killed"
                cut_mid_callback += t["end"] is None
            extra += len(earlier)
    # Kills that landed while at least one body was between its start and its end.
    open_at_death = Counter(
        t["p"] for tries in runs.values() for t in tries if t["end"] is None and t["p"] in killed
    )
    in_flight = Counter(
        t["p"]
        for (i, s), tries in runs.items()
        for t in tries
        if t["p"] in killed
        and not any(
            r["e"] == "seen" and r["p"] == t["p"] and (r["i"], r["s"]) == (i, s) for r in records
        )
    )
    assert extra <= sum(in_flight.values()), "more re-runs than bodies in flight at the kills"
    return {
        "kills": len(c.kills),
        "kills_inside_a_body": len(open_at_death),
        "random_kills_inside_a_body": sum(
            1 for k in c.kills if k.how == "random" and k.pid in open_at_death
        ),
        "bodies_cut_mid_callback": cut_mid_callback,
        "extra_executions": extra,
        "executions": sum(len(t) for t in runs.values()),
    }


async def all_ended(app: perdure.App, count: int) -> bool:
    page, _ = await app.workflow("chaos").list(limit=1000)
    return sum(1 for s in page if s.status in ("complete", "errored", "terminated")) == count


async def test_kill_9_at_random_moments_and_named_points_loses_and_repeats_no_recorded_step(
    tmp_path: Path,
) -> None:
    seed = int(os.environ.get("PERDURE_CRASH_SEED") or random.randrange(1_000_000))
    rng = random.Random(seed)
    # Planned kills, each fired once: inside a body, and right after a step was recorded.
    planned = {
        "c00": {"in_body": ["s1"]},
        "c03": {"after_commit": ["s1"]},
        "c06": {"in_body": ["s2"]},
        "c09": {"after_commit": ["s3"]},
        "c12": {"in_body": ["s3"]},
        "c15": {"after_commit": ["s4"]},
        "c18": {"in_body": ["s5"]},
        "c21": {"after_commit": ["s5"]},  # between the last step and the instance's end
    }
    # Random kills: while the new worker recovers (leases of the dead one still running), or
    # at a random moment once it runs step bodies. Two new instances arrive before each.
    schedule = ["recovery", "work", "work"] * 6
    instances: list[str] = []
    approvals: dict[str, Any] = {}
    sent: set[str] = set()
    with cluster(tmp_path, lease=1.0) as c:
        app = perdure.App(database=c.db, workflows={"chaos": Chaos})
        async with app:
            flow = app.workflow("chaos")

            async def arrive(count: int) -> None:
                for _ in range(count):
                    i = f"c{len(instances):02d}"
                    instances.append(i)
                    approvals[i] = {"n": len(instances)}
                    hold = rng.uniform(0.05, 0.25)
                    await flow.create(id=i, params=params(hold=hold, die=planned.get(i)))
                    if len(instances) % 2:  # sent before the instance waits: kept until it does
                        await (await flow.get(i)).send_event("approval", approvals[i])
                        sent.add(i)

            async def feed() -> bool:
                """The other half get their event once they reach the wait, worker up or down."""
                reached = {r["i"] for r in c.records() if r["e"] == "seen" and r["s"] == "s4"}
                for i in sorted(reached - sent):
                    await (await flow.get(i)).send_event("approval", approvals[i])
                    sent.add(i)
                return False

            async def body_started(pid: int) -> bool:
                await feed()
                return any(r["e"] == "start" and r["p"] == pid for r in c.records())

            async def fed_until(moment: float) -> bool:
                await feed()
                return time.monotonic() > moment

            async def fed_and_ended() -> bool:
                await feed()
                return await all_ended(app, len(instances))

            deadline = time.monotonic() + 85
            arrived = -1
            while schedule:
                assert time.monotonic() < deadline, f"no end in sight (seed {seed})"
                if arrived != len(schedule):
                    await arrive(2)
                    arrived = len(schedule)
                pid = c.spawn()
                await c.wait_ready(pid)
                if schedule[0] == "work" and not await c.until(
                    lambda p=pid: body_started(p), "a step body to start", pid=pid
                ):
                    continue  # a planned kill came first
                span = 1.0 if schedule[0] == "recovery" else 0.6
                moment = time.monotonic() + rng.uniform(0.05, span)
                if await c.until(lambda m=moment: fed_until(m), "", pid=pid) and c.kill(
                    pid, "random"
                ):
                    schedule.pop(0)
                await feed()
            while True:  # no more random kills; planned ones may still come
                pid = c.spawn()
                await c.wait_ready(pid)
                if await c.until(fed_and_ended, "every instance to end", timeout=60, pid=pid):
                    break
                await feed()

            c.stop_all()
            lost = await assert_recorded_once(app, approvals)
            stats = assert_at_least_once(c, instances)

    how = Counter(k.how for k in c.kills)
    summary = f"seed {seed}: {stats}, kills by kind {dict(how)}, lost attempts {dict(lost)}"
    print(summary)
    # The faults really happened. Every planned point was reached; a random kill may beat a
    # planned one by a fraction of a millisecond, hence >= 3 of each rather than == 4.
    markers = {p.name for p in Path(f"{c.ledger}.markers").iterdir()}
    assert markers == {f"{i}.{point}.{s}" for i, d in planned.items() for point, (s,) in d.items()}
    assert how["in_body"] >= 3 and how["after_commit"] >= 3, summary
    assert how["random"] == 18, summary
    assert stats["random_kills_inside_a_body"] >= 6, summary
    assert stats["kills_inside_a_body"] >= 8, summary
    assert stats["bodies_cut_mid_callback"] >= 10, summary


async def test_sleeps_that_came_due_while_no_worker_ran_fire_as_soon_as_one_starts(
    tmp_path: Path,
) -> None:
    instances = [f"n{n:02d}" for n in range(12)]
    approvals = {i: {"n": i} for i in instances}
    with cluster(tmp_path, lease=10.0) as c:  # the default lease: sleepers must not wait for it
        app = perdure.App(database=c.db, workflows={"chaos": Chaos})
        async with app:
            flow = app.workflow("chaos")
            for i in instances:
                await flow.create(id=i, params=params(hold=0.01, nap=1.0))
            pid = c.spawn()

            async def all_asleep() -> bool:
                page, _ = await flow.list(status="waiting", limit=100)
                return len(page) == len(instances)

            await c.until(all_asleep, "every instance to sleep", pid=pid)
            c.kill(pid, "during_sleep")
            wakes = []
            for i in instances:
                handle = await flow.get(i)
                nap = next(s for s in (await handle.describe()).steps if s.name == "nap")
                assert nap.status == "sleeping" and nap.wake_at is not None
                wakes.append(nap.wake_at)
                await handle.send_event("approval", approvals[i])
            while time.time() < max(wakes) + 1.0:  # every sleep comes due with no worker up
                await asyncio.sleep(0.05)

            pid = c.spawn()
            await c.wait_ready(pid)
            await c.until(lambda: all_ended(app, len(instances)), "the end", pid=pid)
            c.stop_all()
            await assert_recorded_once(app, approvals)

    records = c.records()
    ready = next(r["t"] for r in records if r["e"] == "ready" and r["p"] == pid)
    resumed = {r["i"]: r["t"] - ready for r in records if r["e"] == "start" and r["s"] == "s4"}
    assert set(resumed) == set(instances)
    # Woken through the timer index at once, not after the 10 s lease of the dead worker.
    assert max(resumed.values()) < 1.0, (
        f"seconds from worker start to the step after the sleep: {resumed}"
    )


async def test_two_workers_never_run_one_instance_at_once_and_take_over_from_a_dead_one(
    tmp_path: Path,
) -> None:
    seed = int(os.environ.get("PERDURE_CRASH_SEED") or random.randrange(1_000_000))
    rng = random.Random(seed)
    lease = 2.0
    instances: list[str] = []
    taken: dict[int, set[str]] = {}
    with cluster(tmp_path, lease=lease) as c:
        app = perdure.App(database=c.db, workflows={"chaos": Chaos})
        async with app:
            flow = app.workflow("chaos")
            workers = [c.spawn(), c.spawn()]
            for pid in workers:
                await c.wait_ready(pid)
            for round_ in range(4):
                # A fresh wave each round, so both workers are busy whenever a kill comes.
                for n in range(10):
                    i = f"t{round_}{n}"
                    instances.append(i)
                    await flow.create(id=i, params=params(hold=rng.uniform(0.1, 0.3)))
                    await (await flow.get(i)).send_event("approval", {"n": i})
                victim = workers[round_ % 2]
                await asyncio.sleep(rng.uniform(0.2, 0.8))
                await c.until(
                    lambda v=victim: bool(open_bodies(c, v)), "a running body", pid=victim
                )
                taken[victim] = open_bodies(c, victim)
                c.kill(victim, "watched_body")
                workers[round_ % 2] = c.spawn()
                await asyncio.sleep(lease + 0.5)

            await c.until(
                lambda: all_ended(app, len(instances)), "every instance to end", timeout=60
            )
            c.stop_all()
            await assert_recorded_once(app, {i: {"n": i} for i in instances})

    runs = executions(c.records())
    death = {k.pid: k.at for k in c.kills}
    # Never at once: per instance, body executions of different workers do not overlap in time.
    for instance in instances:
        spans = sorted(
            (t["t"], t["end"]["t"] if t["end"] else death[t["p"]], t["p"])
            for (i, _), tries in runs.items()
            if i == instance
            for t in tries
        )
        for (_, end_a, pid_a), (start_b, _, pid_b) in itertools.pairwise(spans):
            assert start_b >= end_a, f"{instance}: workers {pid_a} and {pid_b} overlapped: {spans}"
    # Each worker did work, and every instance a dead worker held moved on within about a lease.
    assert len({t["p"] for tries in runs.values() for t in tries}) >= 4, f"seed {seed}"
    for k in c.kills:
        for instance in taken[k.pid]:
            later = [
                t["t"]
                for (i, _), tries in runs.items()
                if i == instance
                for t in tries
                if t["t"] > k.at
            ]
            assert later, f"{instance} never ran again after worker {k.pid} died"
            delay = min(later) - k.at
            assert delay < lease + 1.5, f"{instance} was taken over {delay:.2f} s after the kill"
    assert_at_least_once(c, instances)


def open_bodies(c: Cluster, pid: int) -> set[str]:
    """Instances whose latest step body, run by worker ``pid``, has started but not ended."""
    return {
        i
        for (i, _), t in executions(c.records()).items()
        if t[-1]["p"] == pid and t[-1]["end"] is None
    }
