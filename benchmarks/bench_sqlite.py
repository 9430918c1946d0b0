"""Benchmarks of perdure on its embedded SQLite backend.

    python benchmarks/bench_sqlite.py [--quick] [--only a,b,c] [--json FILE]

(a) The cost of one checkpointed sequential step against one raw SQLite commit of the same
    durability, measured in the same run on the same disk: WAL with synchronous=FULL for
    durability="full" (the default), synchronous=NORMAL for durability="process".
    Target: a step costs at most 2x a commit.
(b) Workflows completed per second with 1,000 concurrent instances of a 3-step workflow, which
    needs group commit (many instances' checkpoints in one transaction). Target: >= 3,000/s.
(c) A worker, in its own process, with 100,000 sleeping instances: its memory (RSS) and how late
    sleeps wake up (p50, p99), measured on a stream of short sleeps that come due while the
    100,000 long sleepers stay in the timer index. Targets: RSS < 200 MB, p99 < 100 ms.

Every figure is printed with its target and its ratio; --json writes them for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from workloads import Sequential, Sleeper, ThreeSteps

import perdure
from perdure import WorkflowEntrypoint

MODES = {"full": "FULL", "process": "NORMAL"}


WORKFLOWS: dict[str, type[WorkflowEntrypoint]] = {
    "sequential": Sequential,
    "three-steps": ThreeSteps,
    "sleeper": Sleeper,
}


# -- the machine


def machine(folder: str) -> dict[str, str]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    device = subprocess.run(
        ["df", "--output=source,fstype", folder], capture_output=True, text=True, check=False
    ).stdout.split("\n")[1:2]
    disk = device[0].split() if device and device[0] else ["?", "?"]
    rotational = "?"
    name = os.path.basename(disk[0])
    flag = Path(f"/sys/block/{name}/queue/rotational")
    if flag.exists():
        rotational = "rotational" if flag.read_text().strip() == "1" else "non-rotational"
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB",
        "disk": f"{disk[0]} ({disk[1]}, reported {rotational})",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "kernel": platform.release(),
    }


# -- (a) one sequential step against one raw commit


def raw_commit_seconds(path: str, synchronous: str, count: int) -> float:
    """One small transaction per commit, on a file set up like perdure's (WAL, same sync)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute(
        "CREATE TABLE steps (iid INTEGER, key TEXT, status TEXT, attempts TEXT, output TEXT, "
        "PRIMARY KEY (iid, key))"
    )
    attempts = json.dumps([{"attempt": 1, "start": time.time(), "end": time.time()}])
    for i in range(50):  # warm up
        conn.execute("INSERT INTO steps VALUES (0, ?, 'success', ?, '1')", (f"w{i}", attempts))
    started = time.perf_counter()
    for i in range(count):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO steps VALUES (1, ?, 'success', ?, '1')", (f"step {i}#1", attempts)
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed / count


async def step_seconds(path: str, durability: str, count: int, *, sync: bool) -> float:
    app = perdure.App(database=path, workflows=WORKFLOWS, durability=durability)
    async with app, app.worker():
        flow = app.workflow("sequential")
        await (await flow.create(params={"steps": 20, "sync": sync})).wait(60)  # warm up
        instance = await flow.create(params={"steps": count, "sync": sync})
        status = await instance.wait(600)
    assert status.status == "complete", status
    return float(status.output["seconds"]) / count


async def bench_steps(folder: str, count: int, rounds: int) -> list[dict[str, Any]]:
    """Per round: raw commits, steps, steps with a sync body, raw commits again. The ratio is
    taken within each round (against the mean of the two raw runs around it), so a slow spell of
    the disk hits both sides; the figures are the medians over the rounds."""
    rows = []
    for durability, synchronous in MODES.items():
        raws, steps, steps_sync, ratios, ratios_sync = [], [], [], [], []
        for n in range(rounds):

            def path(kind: str, tag: str = f"{durability}-{n}") -> str:
                return os.path.join(folder, f"{kind}-{tag}.db")

            before = raw_commit_seconds(path("raw-before"), synchronous, count)
            step = await step_seconds(path("steps"), durability, count, sync=False)
            step_sync = await step_seconds(path("steps-sync"), durability, count, sync=True)
            raw = (before + raw_commit_seconds(path("raw-after"), synchronous, count)) / 2
            raws.append(raw)
            steps.append(step)
            steps_sync.append(step_sync)
            ratios.append(step / raw)
            ratios_sync.append(step_sync / raw)
        rows.append(
            {
                "durability": durability,
                "synchronous": synchronous,
                "rounds": rounds,
                "steps_per_round": count,
                "raw_commit_us": statistics.median(raws) * 1e6,
                "step_us": statistics.median(steps) * 1e6,
                "step_sync_body_us": statistics.median(steps_sync) * 1e6,
                "ratio": statistics.median(ratios),
                "ratio_min": min(ratios),
                "ratio_max": max(ratios),
                "ratio_sync_body": statistics.median(ratios_sync),
                "target_ratio": 2.0,
            }
        )
    return rows


# -- (b) concurrent 3-step workflows


async def bench_throughput(folder: str, count: int, durability: str, rounds: int) -> dict[str, Any]:
    runs = [await throughput_once(folder, count, durability, n) for n in range(rounds)]
    best = max(runs, key=lambda r: r["workflows_per_s"])
    median = statistics.median(r["workflows_per_s"] for r in runs)
    return {
        **best,
        "workflows_per_s": median,
        "best_workflows_per_s": best["workflows_per_s"],
        "steps_per_s": 3 * median,
        "rounds": rounds,
    }


async def throughput_once(folder: str, count: int, durability: str, n: int) -> dict[str, Any]:
    path = os.path.join(folder, f"throughput-{durability}-{n}.db")
    app = perdure.App(database=path, workflows=WORKFLOWS, durability=durability)
    async with app:
        flow = app.workflow("three-steps")
        for start in range(0, count, 100):
            await flow.create_batch([{} for _ in range(min(100, count - start))])
        async with app.worker(concurrency=count) as worker:
            started = time.perf_counter()
            while worker.completed < count:
                await asyncio.sleep(0.002)
            elapsed = time.perf_counter() - started
        counts = (await app.describe_workflow("three-steps")).counts
    assert counts.get("complete") == count, counts
    return {
        "durability": durability,
        "instances": count,
        "seconds": elapsed,
        "workflows_per_s": count / elapsed,
        "steps_per_s": 3 * count / elapsed,
        "target_workflows_per_s": 3000,
    }


# -- (c) 100,000 sleepers in a worker process


def rss_mb(pid: int) -> tuple[float, float]:
    """Current and peak resident memory of a process, in MB."""
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def wait_counts(
    app: perdure.App, want: dict[str, int], timeout: float, child: subprocess.Popen[bytes]
) -> float:
    started = time.perf_counter()
    while True:
        counts = (await app.describe_workflow("sleeper")).counts
        if all(counts.get(k, 0) >= v for k, v in want.items()):
            return time.perf_counter() - started
        if child.poll() is not None:
            raise RuntimeError(f"the worker process exited with {child.returncode}")
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"timed out waiting for {want}; counts {counts}")
        await asyncio.sleep(0.5)


async def bench_sleepers(folder: str, sleepers: int, wakers: int, window: float) -> dict[str, Any]:
    path = os.path.join(folder, "sleepers.db")
    app = perdure.App(database=path, workflows=WORKFLOWS)
    async with app:
        flow = app.workflow("sleeper")
        created = time.perf_counter()
        far = time.time() + 86_400
        for start in range(0, sleepers, 100):
            await flow.create_batch(
                [{"params": {"wake": far}} for _ in range(min(100, sleepers - start))]
            )
        create_s = time.perf_counter() - created
        child = subprocess.Popen(
            [sys.executable, __file__, "--worker", path],
            stdout=subprocess.PIPE,
        )
        try:
            assert child.stdout is not None
            child.stdout.readline()  # the worker is up
            idle_rss, _ = rss_mb(child.pid)
            asleep_s = await wait_counts(app, {"waiting": sleepers}, 1800, child)
            await asyncio.sleep(2)  # let the worker settle after the last suspend
            asleep_rss, asleep_peak = rss_mb(child.pid)
            # A stream of short sleeps comes due while the long sleepers stay in the index.
            first = time.time() + 5
            for start in range(0, wakers, 100):
                await flow.create_batch(
                    [
                        {"params": {"wake": first + window * (start + n) / wakers}}
                        for n in range(min(100, wakers - start))
                    ]
                )
            # Stay quiet while they wake: the figure is the worker's, not this client's polling.
            await asyncio.sleep(max(0.0, first + window + 0.5 - time.time()))
            await wait_counts(app, {"waiting": sleepers, "complete": wakers}, 600, child)
            end_rss, end_peak = rss_mb(child.pid)
            page, cursor = await flow.list(status="complete", limit=1000)
            ids = [s.id for s in page]
            while cursor:
                page, cursor = await flow.list(status="complete", limit=1000, cursor=cursor)
                ids += [s.id for s in page]
            late: list[float] = []
            for start in range(0, len(ids), 200):
                statuses = await asyncio.gather(
                    *[(await flow.get(i)).status() for i in ids[start : start + 200]]
                )
                late += [float(s.output) for s in statuses]
        finally:
            child.terminate()
            child.wait()
    return {
        "sleepers": sleepers,
        "create_s": create_s,
        "to_sleep_s": asleep_s,
        "to_sleep_per_s": sleepers / asleep_s,
        "rss_idle_mb": idle_rss,
        "rss_asleep_mb": asleep_rss,
        "rss_peak_mb": max(asleep_peak, end_peak),
        "rss_end_mb": end_rss,
        "wakeups": len(late),
        "wakeup_rate_per_s": wakers / window,
        "late_p50_ms": percentile(late, 50) * 1000,
        "late_p99_ms": percentile(late, 99) * 1000,
        "late_max_ms": max(late) * 1000,
        "late_mean_ms": statistics.fmean(late) * 1000,
        "target_rss_mb": 200,
        "target_p99_ms": 100,
    }


def run_worker(path: str) -> None:
    """The worker process of (c): reports when it is up, runs until terminated."""
    app = perdure.App(database=path, workflows=WORKFLOWS)

    async def main() -> None:
        async with app, app.worker():
            print("up", flush=True)
            await asyncio.Event().wait()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass


# -- report


def verdict(ok: bool) -> str:
    return "meets target" if ok else "MISSES target"


def report(results: dict[str, Any]) -> None:
    info = results["machine"]
    print(f"\nmachine: {info['cpu']}, {info['cores']} cores, {info['memory']}, disk {info['disk']}")
    print(f"python {info['python']}, sqlite {info['sqlite']}, kernel {info['kernel']}")
    print(
        f"load average (1 min) {results['load_before']:.2f} before, {results['load_after']:.2f} "
        "after: other work on the machine skews every figure\n"
    )
    if "steps" in results:
        print("(a) one checkpointed sequential step vs one raw SQLite commit (WAL)")
        print(
            f"  {'durability':<11}{'synchronous':<13}{'raw commit':>12}{'step':>10}{'ratio':>8}"
            f"{'step, sync body':>17}{'ratio':>8}"
        )
        for row in results["steps"]:
            print(
                f"  {row['durability']:<11}{row['synchronous']:<13}{row['raw_commit_us']:>9.0f} us"
                f"{row['step_us']:>7.0f} us{row['ratio']:>7.2f}x{row['step_sync_body_us']:>14.0f} us"
                f"{row['ratio_sync_body']:>7.2f}x   {verdict(row['ratio'] <= row['target_ratio'])}"
                " (<= 2x)"
            )
        for row in results["steps"]:
            print(
                f"  {row['durability']}: ratio {row['ratio_min']:.2f}x to {row['ratio_max']:.2f}x "
                f"over {row['rounds']} rounds of {row['steps_per_round']} steps (medians above)"
            )
    if "throughput" in results:
        print("\n(b) 1,000 concurrent instances of a 3-step workflow")
        for row in results["throughput"]:
            print(
                f"  durability={row['durability']:<8} {row['workflows_per_s']:>7.0f} workflows/s "
                f"(median of {row['rounds']}; best {row['best_workflows_per_s']:.0f}; "
                f"{row['steps_per_s']:.0f} steps/s)   "
                f"{verdict(row['workflows_per_s'] >= row['target_workflows_per_s'])} (>= 3,000/s)"
            )
    if "sleepers" in results:
        row = results["sleepers"]
        print(f"\n(c) a worker process with {row['sleepers']:,} sleeping instances")
        print(
            f"  put to sleep in {row['to_sleep_s']:.1f} s ({row['to_sleep_per_s']:.0f}/s); "
            f"created in {row['create_s']:.1f} s"
        )
        print(
            f"  RSS: {row['rss_idle_mb']:.0f} MB idle, {row['rss_asleep_mb']:.0f} MB with all asleep, "
            f"peak {row['rss_peak_mb']:.0f} MB   {verdict(row['rss_peak_mb'] < 200)} (< 200 MB)"
        )
        print(
            f"  {row['wakeups']:,} wake-ups at {row['wakeup_rate_per_s']:.0f}/s: late by "
            f"p50 {row['late_p50_ms']:.1f} ms, p99 {row['late_p99_ms']:.1f} ms, "
            f"max {row['late_max_ms']:.1f} ms   {verdict(row['late_p99_ms'] < 100)} (p99 < 100 ms)"
        )


async def main(args: argparse.Namespace) -> dict[str, Any]:
    only = set(args.only.split(",")) if args.only else {"a", "b", "c"}
    folder = tempfile.mkdtemp(prefix="perdure-bench-", dir=args.dir)
    results: dict[str, Any] = {"machine": machine(folder), "quick": args.quick}
    results["load_before"] = os.getloadavg()[0]
    rounds = 1 if args.quick else 3
    if "a" in only:
        results["steps"] = await bench_steps(
            folder, 300 if args.quick else 1000, 1 if args.quick else 7
        )
    if "b" in only:
        results["throughput"] = [
            await bench_throughput(folder, 1000, durability, rounds) for durability in MODES
        ]
    if "c" in only:
        results["sleepers"] = await bench_sleepers(
            folder,
            sleepers=args.sleepers or (10_000 if args.quick else 100_000),
            wakers=args.wakeups or (1000 if args.quick else 5000),
            window=args.window,
        )
    results["load_after"] = os.getloadavg()[0]
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller runs, about a minute")
    parser.add_argument("--only", help="a comma-separated subset of a,b,c")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--dir", help="folder for the database files (default: the temp folder)")
    parser.add_argument("--sleepers", type=int, help="(c): long sleepers (default 100,000)")
    parser.add_argument("--wakeups", type=int, help="(c): short sleeps that come due (5,000)")
    parser.add_argument("--window", type=float, default=10.0, help="(c): seconds they spread over")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.worker:
        run_worker(options.worker)
        sys.exit(0)
    figures = asyncio.run(main(options))
    report(figures)
    if options.json:
        Path(options.json).write_text(json.dumps(figures, indent=2) + "\n")
