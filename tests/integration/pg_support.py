"""Worker processes, kills and the ledger checks of the PostgreSQL fault tests."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from tests.integration.pg_worker import LEDGER_SQL, STEPS

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Fleet:
    """Worker processes (tests/integration/pg_worker.py) on one database, and every kill."""

    url: str
    logs: Path
    lease: float = 2.0
    concurrency: int = 25
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    kills: dict[int, float] = field(default_factory=dict)  # pid -> when it was SIGKILLed
    started: int = 0

    def start(self) -> int:
        self.started += 1
        log = open(self.logs / f"worker-{self.started}.log", "wb")
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "tests.integration.pg_worker", "--database", self.url),
                *("--lease", str(self.lease), "--concurrency", str(self.concurrency)),
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.procs[proc.pid] = proc
        return proc.pid

    def kill_one(self, rng: random.Random) -> int:
        pid = rng.choice(sorted(self.procs))
        proc = self.procs.pop(pid)
        self.kills[pid] = time.time()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return pid

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()

    def assert_alive(self) -> None:
        """Workers run until stopped; one that exited on its own is a failure (logs shown)."""
        dead = [pid for pid, proc in self.procs.items() if proc.poll() is not None]
        if dead:
            logs = "\n".join(
                path.read_text(errors="replace")[-2000:] for path in sorted(self.logs.glob("*.log"))
            )
            raise AssertionError(f"worker(s) {dead} exited on their own; logs:\n{logs}")


def create_ledger(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(LEDGER_SQL)


def count(url: str, sql: str, params: tuple[Any, ...] = ()) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(sql, params).fetchone()
        return int(row[0]) if row else 0


def completed(url: str) -> int:
    return count(
        url, "SELECT count(*) FROM instances WHERE workflow = 'ledgered' AND status = 'complete'"
    )


@dataclass
class LedgerFacts:
    executions: int
    cut_off: int  # bodies a kill interrupted (no end)
    redone: int  # steps whose body ran more than once


def check_ledger(
    url: str, instances: int, kills: dict[int, float], crashes: list[float] | None = None
) -> LedgerFacts:
    """Everything the fault tests promise, proved from perdure's tables and the ledger.

    ``kills`` maps each SIGKILLed worker's pid to when it died; ``crashes`` lists when the
    database crashed. A body without an end must have been cut off by one of them."""
    crashes = sorted(crashes or [])

    def cut_off_at(pid: int, started: float) -> float | None:
        ends = [t for t in crashes if t >= started - 1.0]
        if pid in kills:
            ends.append(max(kills[pid], started))
        return max(min(ends), started) if ends else None

    with psycopg.connect(url, autocommit=True) as conn:
        states = dict(
            conn.execute(
                "SELECT status, count(*) FROM instances WHERE workflow = 'ledgered' GROUP BY status"
            ).fetchall()
        )
        assert states == {"complete": instances}, f"not every instance completed: {states}"
        leased = conn.execute(
            "SELECT count(*) FROM instances WHERE lease_owner IS NOT NULL "
            "OR lease_expires_at IS NOT NULL"
        ).fetchone()
        assert leased == (0,), f"{leased[0] if leased else '?'} leases left behind"
        outputs = {
            id_: output
            for id_, output in conn.execute(
                "SELECT id, output FROM instances WHERE workflow = 'ledgered'"
            ).fetchall()
        }
        recorded: dict[tuple[str, str], int] = {}
        for id_, key, status, output in conn.execute(
            "SELECT i.id, s.key, s.status, s.output FROM steps s JOIN instances i ON i.iid = s.iid"
        ).fetchall():
            assert status == "success", (id_, key, status)
            name = key.split("#")[0]
            assert (id_, name) not in recorded, f"step {key} of {id_} recorded twice"
            recorded[(id_, name)] = int(output)
        ledger = conn.execute(
            "SELECT id, instance, step, pid, owner, epoch, started, ended FROM ledger"
        ).fetchall()

    # Every step of every instance recorded exactly once, and the output is made of them.
    assert len(recorded) == instances * len(STEPS), (len(recorded), instances * len(STEPS))
    for id_, output in outputs.items():
        assert json.loads(output) == [recorded[(id_, name)] for name in STEPS], id_

    by_step: dict[tuple[str, str], list[Any]] = defaultdict(list)
    by_instance: dict[str, list[Any]] = defaultdict(list)
    for row in ledger:
        entry, instance, step, pid, owner, _epoch, started, ended = row
        # The process running a body held the instance's lease when the body began.
        assert owner is not None and owner.split(":")[-2] == str(pid), (
            f"body {step} of {instance} ran in pid {pid} while the lease was {owner!r}"
        )
        by_step[(instance, step)].append(row)
        if ended is None:
            ended = cut_off_at(pid, started)
            assert ended is not None, f"body {step} of {instance} (pid {pid}) never ended"
        by_instance[instance].append((started, ended, pid, entry))

    # The recorded result is one execution that ran to its end; any other execution of the
    # same step was cut off by a kill (at least once inside a step, never more without a cause).
    redone = 0
    for (instance, step), rows in by_step.items():
        winner = recorded[(instance, step)]
        assert any(r[0] == winner and r[7] is not None for r in rows), (instance, step)
        for r in rows:
            if r[0] != winner:
                assert cut_off_at(r[3], r[6]) is not None, f"{step} of {instance} ran again: {rows}"
        redone += len(rows) > 1

    # No two processes ever ran the same instance at the same time.
    for instance, runs in by_instance.items():
        runs.sort()
        busy_until, busy_pid = 0.0, None
        for started, ended, pid, entry in runs:
            if busy_pid is not None and pid != busy_pid:
                assert started >= busy_until, (
                    f"instance {instance}: pid {pid} started body #{entry} at {started:.6f} "
                    f"while pid {busy_pid} ran until {busy_until:.6f}"
                )
            if ended >= busy_until:
                busy_until, busy_pid = ended, pid
    cut_off = sum(1 for row in ledger if row[7] is None)
    return LedgerFacts(executions=len(ledger), cut_off=cut_off, redone=redone)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def own_cluster() -> Iterator[tuple[str, dict[str, str]]]:
    """A PostgreSQL cluster of this test's own (scripts/pg-test-cluster), so crashing it does
    not disturb other tests; yields its URL and the environment that names it."""
    env = {
        **os.environ,
        "PERDURE_PG_DIR": f"/tmp/perdure-pg-t{os.getpid()}",
        "PERDURE_PG_PORT": str(free_port()),
    }
    script = str(ROOT / "scripts" / "pg-test-cluster")
    started = subprocess.run(
        [script, "start"], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert started.returncode == 0, f"{script} start failed:\n{started.stderr}"
    try:
        yield started.stdout.split()[-1], env
    finally:
        subprocess.run([script, "stop"], env=env, capture_output=True, timeout=120, check=False)
        Path(f"{env['PERDURE_PG_DIR']}.lock").unlink(missing_ok=True)


def restart_immediate(env: dict[str, str]) -> None:
    script = str(ROOT / "scripts" / "pg-test-cluster")
    done = subprocess.run(
        [script, "restart-immediate"], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{script} restart-immediate failed:\n{done.stderr}"
