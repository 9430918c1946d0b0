"""Benchmarks of perdure on PostgreSQL (the server on the same machine).

    python benchmarks/bench_postgres.py [--quick] [--only a,b,c,d] [--url URL] [--json FILE]

(a) One checkpointed sequential step against one raw PostgreSQL commit (a one-row INSERT in its
    own transaction, synchronous_commit as perdure sets it), measured in the same run.
    Target: a step costs at most 2x a commit.
(b) Three-step workflows completed per second with 1, 2 and 4 worker processes sharing the
    database. Target: one worker completes at least 1,500 workflows/s.
(c) 1,000 instances sleeping to the same deadline: how late each resumes, with one worker
    process. Target: all within 250 ms of the deadline.
(d) A worker process is SIGKILLed while it runs instances: how long until another worker
    process runs them, against the lease. Target: within the lease time.

Without --url (or PERDURE_BENCH_PG) it starts a throwaway cluster of its own through
scripts/pg-test-cluster (PERDURE_PG_DIR=/tmp/perdure-pg-bench, port 55438) and removes it after.
Every section runs in a fresh schema. Figures are printed with their targets and ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from workloads import Sequential, Sleeper, ThreeSteps

import perdure
from perdure import WorkflowEntrypoint, WorkflowEvent, WorkflowStep

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = "/tmp/perdure-pg-bench"
BENCH_PORT = "55438"


async def hold() -> None:
    await asyncio.sleep(3600)


class Holder(WorkflowEntrypoint):
    """A step that runs for an hour: the instance stays leased by whoever runs it."""

    async def run(self, event: WorkflowEvent, step: WorkflowStep) -> None:
        await step.do("hold", hold, retries={"limit": 0})


WORKFLOWS: dict[str, type[WorkflowEntrypoint]] = {
    "sequential": Sequential,
    "three-steps": ThreeSteps,
    "sleeper": Sleeper,
    "holder": Holder,
}


# -- the server and its schemas


@contextmanager
def server(url: str | None) -> Iterator[str]:
    """The given server, or a throwaway cluster of our own for the length of the run."""
    if url:
        yield url
        return
    env = {**os.environ, "PERDURE_PG_DIR": BENCH_DIR, "PERDURE_PG_PORT": BENCH_PORT}
    script = str(ROOT / "scripts" / "pg-test-cluster")
    started = subprocess.run(
        [script, "start"], env=env, capture_output=True, text=True, check=False
    )
    if started.returncode != 0:
        sys.exit(f"could not start PostgreSQL with {script}:\n{started.stderr}")
    try:
        yield started.stdout.split()[-1]
    finally:
        subprocess.run([script, "stop"], env=env, capture_output=True, check=False)
        Path(f"{BENCH_DIR}.lock").unlink(missing_ok=True)


@contextmanager
def schema(base: str) -> Iterator[str]:
    """A URL whose connections all use a fresh schema, dropped afterwards."""
    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    try:
        yield f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {name} CASCADE")


def machine(base: str) -> dict[str, str]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with psycopg.connect(base, autocommit=True) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        version = str(row[0]) if row else "?"
        row = conn.execute("SHOW data_directory").fetchone()
        data = str(row[0]) if row else "/"
    device = subprocess.run(
        ["df", "--output=source,fstype", data if os.path.exists(data) else "/"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split("\n")[1:2]
    disk = device[0].split() if device and device[0] else ["?", "?"]
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB",
        "disk": f"{disk[0]} ({disk[1]})",
        "postgresql": version,
        "python": platform.python_version(),
        "psycopg": psycopg.__version__,
    }


# -- worker processes


def run_worker(url: str, lease: float, concurrency: int) -> None:
    """A worker process: prints ``up <owner>`` once it claims, runs until SIGTERM or SIGKILL."""

    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        app = perdure.App(database=url, workflows=WORKFLOWS)
        async with app, app.worker(concurrency=concurrency, lease_seconds=lease) as worker:
            print("up", worker.owner, flush=True)
            await stop.wait()

    asyncio.run(main())


class Workers:
    """Worker processes of this script, each up (claiming) before the constructor returns."""

    def __init__(self, url: str, count: int, *, lease: float = 10.0, concurrency: int = 1000):
        self.procs: list[subprocess.Popen[str]] = []
        self.owners: list[str] = []
        for _ in range(count):
            self.procs.append(
                subprocess.Popen(
                    [
                        *(sys.executable, __file__, "--worker", url),
                        *("--lease", str(lease), "--concurrency", str(concurrency)),
                    ],
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        for proc in self.procs:
            assert proc.stdout is not None
            line = proc.stdout.readline().split()
            if not line or line[0] != "up":
                self.stop()
                raise RuntimeError("a worker process did not start")
            self.owners.append(line[1])

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            proc.wait(30)


# -- (a) one sequential step against one raw commit


def raw_commit_seconds(url: str, synchronous_commit: str, count: int) -> float:
    """A one-row INSERT in its own transaction: one round trip and one WAL flush."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"SET synchronous_commit = {synchronous_commit}")
        conn.execute(
            "CREATE TABLE raw_steps (iid bigint, key text, status text, attempts text, "
            "output text, PRIMARY KEY (iid, key))"
        )
        attempts = json.dumps([{"attempt": 1, "start": time.time(), "end": time.time()}])
        insert = "INSERT INTO raw_steps VALUES (%s, %s, 'success', %s, '1')"
        for i in range(50):  # warm up (and let psycopg prepare the statement)
            conn.execute(insert, (0, f"w{i}", attempts))
        started = time.perf_counter()
        for i in range(count):
            conn.execute(insert, (1, f"step {i}#1", attempts))
        return (time.perf_counter() - started) / count


async def step_seconds(url: str, durability: str, count: int) -> float:
    app = perdure.App(database=url, workflows=WORKFLOWS, durability=durability)
    async with app, app.worker():
        flow = app.workflow("sequential")
        await (await flow.create(params={"steps": 20})).wait(60)  # warm up
        status = await (await flow.create(params={"steps": count})).wait(600)
    assert status.status == "complete", status
    return float(status.output["seconds"]) / count


async def bench_steps(base: str, count: int, rounds: int) -> list[dict[str, Any]]:
    rows = []
    for durability, synchronous_commit in (("full", "on"), ("process", "off")):
        raws, steps = [], []
        for _ in range(rounds):  # interleaved, so a load change hits both alike
            with schema(base) as url:
                raws.append(raw_commit_seconds(url, synchronous_commit, count))
            with schema(base) as url:
                steps.append(await step_seconds(url, durability, count))
        raw, step = statistics.median(raws), statistics.median(steps)
        rows.append(
            {
                "durability": durability,
                "synchronous_commit": synchronous_commit,
                "raw_commit_us": raw * 1e6,
                "step_us": step * 1e6,
                "ratio": step / raw,
                "target_ratio": 2.0,
            }
        )
    return rows


# -- (b) throughput with 1, 2 and 4 worker processes


def insert_runnable(url: str, workflow: str, count: int) -> float:
    """``count`` queued instances in one statement, as create() makes them; returns the
    database time of the commit (the workers are already up and waiting)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "WITH wf AS (SELECT version FROM workflows WHERE name = %s), t AS "
            "(SELECT extract(epoch FROM clock_timestamp())::float8 AS now) "
            "INSERT INTO instances (workflow, id, status, params, version, created_at, "
            "modified_at, wake_at) SELECT %s, 'bench-' || n, 'queued', '{}', wf.version, "
            "t.now, t.now, t.now FROM generate_series(1, %s) AS n, wf, t RETURNING created_at",
            (workflow, workflow, count),
        ).fetchone()
        assert row is not None
        conn.execute("SELECT pg_notify('perdure.' || current_schema(), '')")
        return float(row[0])


def wait_complete(url: str, workflow: str, count: int, timeout: float) -> float:
    """Waits until ``count`` instances completed; returns when the last one ended."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            row = conn.execute(
                "SELECT count(*), max(ended_at) FROM instances WHERE workflow = %s "
                "AND status = 'complete'",
                (workflow,),
            ).fetchone()
            assert row is not None
            if row[0] >= count:
                return float(row[1])
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {row[0]} of {count} instances completed in time")
            time.sleep(0.05)


async def register(url: str) -> None:
    async with perdure.App(database=url, workflows=WORKFLOWS):
        pass


async def bench_throughput(base: str, processes: int, count: int, rounds: int) -> dict[str, Any]:
    rates = []
    for _ in range(rounds):
        with schema(base) as url:
            await register(url)
            workers = Workers(url, processes)
            try:
                created = insert_runnable(url, "three-steps", count)
                last = wait_complete(url, "three-steps", count, 600)
            finally:
                workers.stop()
            rates.append(count / (last - created))
    rate = statistics.median(rates)
    return {
        "processes": processes,
        "instances": count,
        "workflows_per_s": rate,
        "steps_per_s": 3 * rate,
        "rounds": [round(r) for r in rates],
        "target_workflows_per_s": 1500 if processes == 1 else None,
    }


# -- (c) 1,000 sleepers to one deadline


async def bench_sleepers(base: str, count: int, lead: float) -> dict[str, Any]:
    with schema(base) as url:
        await register(url)
        workers = Workers(url, 1)
        try:
            app = perdure.App(database=url, workflows=WORKFLOWS)
            async with app:
                flow = app.workflow("sleeper")
                wake = time.time() + lead
                for start in range(0, count, 100):
                    await flow.create_batch(
                        [{"params": {"wake": wake}} for _ in range(min(100, count - start))]
                    )
                asleep = time.time()
                await asyncio.sleep(max(0.0, wake - time.time()) + 2.0)
                with psycopg.connect(url, autocommit=True) as conn:
                    while True:
                        rows = conn.execute(
                            "SELECT output FROM instances WHERE workflow = 'sleeper' "
                            "AND status = 'complete'"
                        ).fetchall()
                        if len(rows) >= count:
                            break
                        await asyncio.sleep(0.2)
        finally:
            workers.stop()
    late = sorted(float(row[0]) for row in rows)
    return {
        "instances": count,
        "slack_before_deadline_s": wake - asleep,
        "late_p50_ms": late[len(late) // 2] * 1000,
        "late_p99_ms": late[int(len(late) * 0.99) - 1] * 1000,
        "late_max_ms": late[-1] * 1000,
        "target_max_ms": 250,
    }


# -- (d) takeover after a SIGKILL


async def bench_takeover(base: str, count: int, lease: float) -> dict[str, Any]:
    with schema(base) as url:
        await register(url)
        doomed = Workers(url, 1, lease=lease)
        survivor: Workers | None = None
        try:
            app = perdure.App(database=url, workflows=WORKFLOWS)
            async with app:
                await app.workflow("holder").create_batch([{} for _ in range(count)])
            owner = doomed.owners[0]
            with psycopg.connect(url, autocommit=True) as conn:
                while True:  # every instance inside its step, on the doomed worker
                    row = conn.execute(
                        "SELECT count(*) FROM instances i JOIN steps s ON s.iid = i.iid "
                        "WHERE i.lease_owner = %s",
                        (owner,),
                    ).fetchone()
                    if row and row[0] >= count:
                        break
                    time.sleep(0.05)
                survivor = Workers(url, 1, lease=lease)
                time.sleep(lease / 3 * 1.5)  # a heartbeat renewed the leases a moment ago
                killed = time.time()
                doomed.procs[0].send_signal(signal.SIGKILL)
                while True:
                    row = conn.execute(
                        "SELECT count(*), max(modified_at), min(modified_at) FROM instances "
                        "WHERE lease_owner = %s",
                        (survivor.owners[0],),
                    ).fetchone()
                    if row and row[0] >= count:
                        break
                    if time.time() - killed > lease * 3:
                        raise RuntimeError("the survivor did not take the instances over")
                    time.sleep(0.05)
        finally:
            doomed.stop()
            if survivor is not None:
                survivor.stop()
    return {
        "instances": count,
        "lease_s": lease,
        "first_running_again_s": float(row[2]) - killed,
        "all_running_again_s": float(row[1]) - killed,
        "target_s": lease,
    }


# -- report


def verdict(ok: bool) -> str:
    return "meets target" if ok else "MISSES target"


def report(results: dict[str, Any]) -> None:
    info = results["machine"]
    print(f"\nmachine: {info['cpu']}, {info['cores']} cores, {info['memory']}, disk {info['disk']}")
    print(
        f"PostgreSQL {info['postgresql']} on the same machine; python {info['python']}, "
        f"psycopg {info['psycopg']}; load average {results['load_before']:.1f} before, "
        f"{results['load_after']:.1f} after\n"
    )
    if "steps" in results:
        print("(a) one checkpointed sequential step vs one raw PostgreSQL commit")
        for row in results["steps"]:
            print(
                f"  durability={row['durability']:<8} synchronous_commit={row['synchronous_commit']:<4}"
                f" raw commit {row['raw_commit_us']:>5.0f} us, step {row['step_us']:>5.0f} us: "
                f"{row['ratio']:.2f}x   {verdict(row['ratio'] <= row['target_ratio'])} (<= 2x)"
            )
    if "throughput" in results:
        print("\n(b) three-step workflows completed per second, worker processes sharing the work")
        for row in results["throughput"]:
            target = row["target_workflows_per_s"]
            note = f"   {verdict(row['workflows_per_s'] >= target)} (>= 1,500/s)" if target else ""
            print(
                f"  {row['processes']} process{'es' if row['processes'] > 1 else '  '}: "
                f"{row['workflows_per_s']:>6.0f} workflows/s ({row['steps_per_s']:.0f} steps/s; "
                f"rounds {row['rounds']}){note}"
            )
    if "sleepers" in results:
        row = results["sleepers"]
        print(f"\n(c) {row['instances']:,} instances sleeping to the same deadline, one worker")
        print(
            f"  resumed late by p50 {row['late_p50_ms']:.0f} ms, p99 {row['late_p99_ms']:.0f} ms, "
            f"max {row['late_max_ms']:.0f} ms   {verdict(row['late_max_ms'] <= 250)} (<= 250 ms)"
        )
    if "takeover" in results:
        row = results["takeover"]
        print(
            f"\n(d) SIGKILL of a worker running {row['instances']} instances, lease {row['lease_s']:g} s"
        )
        print(
            f"  running again on the other worker after {row['first_running_again_s']:.2f} s "
            f"(first) to {row['all_running_again_s']:.2f} s (all): "
            f"{row['all_running_again_s'] / row['lease_s']:.2f}x the lease   "
            f"{verdict(row['all_running_again_s'] <= row['lease_s'])} (within the lease)"
        )


async def main(args: argparse.Namespace) -> dict[str, Any]:
    only = set(args.only.split(",")) if args.only else {"a", "b", "c", "d"}
    with server(args.url or os.environ.get("PERDURE_BENCH_PG")) as base:
        results: dict[str, Any] = {"machine": machine(base), "quick": args.quick}
        results["load_before"] = os.getloadavg()[0]
        rounds = 1 if args.quick else 3
        if "a" in only:
            results["steps"] = await bench_steps(base, 300 if args.quick else 2000, rounds)
        if "b" in only:
            count = 3000 if args.quick else 10_000
            results["throughput"] = [
                await bench_throughput(base, processes, count, rounds) for processes in (1, 2, 4)
            ]
        if "c" in only:
            results["sleepers"] = await bench_sleepers(base, 1000, lead=5.0)
        if "d" in only:
            results["takeover"] = await bench_takeover(base, 100, lease=args.lease)
        results["load_after"] = os.getloadavg()[0]
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller runs, one round each")
    parser.add_argument("--only", help="a comma-separated subset of a,b,c,d")
    parser.add_argument("--url", help="a PostgreSQL server to use (default: a throwaway one)")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--lease", type=float, default=5.0, help="(d): lease seconds")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, default=1000, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.worker:
        run_worker(options.worker, options.lease, options.concurrency)
        sys.exit(0)
    figures = asyncio.run(main(options))
    report(figures)
    if options.json:
        Path(options.json).write_text(json.dumps(figures, indent=2) + "\n")
