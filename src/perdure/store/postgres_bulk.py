"""Fewer round trips for the PostgreSQL writer: checkpoints in bulk, BEGIN and COMMIT folded in.

On PostgreSQL the writer's cost is round trips, not commits. Two things cut them:

- ``Bulk``: consecutive step checkpoints and finishes become one writer job and one statement,
  which locks and checks every lease and writes every step and finish that still holds it.
  Order is kept: the run of checkpoints takes the place of its first one in the writer's
  queue, and any other write seals it, so nothing queued after that write joins it.
- ``WriterConnection``: BEGIN waits for the first statement that needs it, and the bulk
  statement waits for the COMMIT. A transaction that is only that statement is sent alone, as
  the one-statement transaction it is: a checkpoint then costs one round trip, like a plain
  INSERT.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import select
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.pq import ConnStatus, TransactionStatus

from ..errors import LeaseLostError
from ..states import Status, parse_status
from .base import Lease, StepWrite
from .sql import Tx

Submit = Callable[..., "concurrent.futures.Future[Any]"]
Pending = list[tuple["Item", "asyncio.Future[Any]"]]

_ACTIVE = (Status.RUNNING, Status.WAITING_FOR_PAUSE)

# One statement: lock the instances (in iid order, so two writers never deadlock), then write
# the steps and finishes whose lease (owner and epoch) still holds; return what was found so
# each caller learns whether its lease held. FOR NO KEY UPDATE is the lock any UPDATE of the
# row takes (a claim, terminate, restart), so they wait for this write or it sees theirs; it
# costs less than FOR UPDATE, which also blocks foreign-key checks we do not have.
_WRITE = """
WITH leases AS (
    SELECT * FROM json_to_recordset(?::json) AS l(iid bigint, owner text, epoch bigint)
), held AS (
    SELECT i.iid, i.lease_owner, i.epoch, i.status FROM instances i
    WHERE i.iid IN (SELECT iid FROM leases) ORDER BY i.iid FOR NO KEY UPDATE
), ok AS (
    SELECT h.iid, h.lease_owner, h.epoch FROM held h
    WHERE h.status IN ('running', 'waitingForPause')
), saved AS (
    INSERT INTO steps (iid, key, name, occurrence, kind, status, seq, config, attempts,
        output, error, started_at, ended_at, wake_at)
    SELECT s.iid, s.key, s.name, s.occurrence, s.kind, s.status, s.seq, s.config, s.attempts,
        s.output, s.error, s.started_at, s.ended_at, s.wake_at
    FROM json_to_recordset(?::json) AS s(iid bigint, owner text, epoch bigint, key text,
        name text, occurrence int, kind text, status text, seq int, config text, attempts text,
        output text, error text, started_at float8, ended_at float8, wake_at float8)
    JOIN ok ON ok.iid = s.iid AND ok.lease_owner = s.owner AND ok.epoch = s.epoch
    ON CONFLICT (iid, key) DO UPDATE SET status = excluded.status, config = excluded.config,
        attempts = excluded.attempts, output = excluded.output, error = excluded.error,
        ended_at = excluded.ended_at, wake_at = excluded.wake_at
), finished AS (
    UPDATE instances AS i SET status = f.status, output = f.output, error = f.error,
        ended_at = ?, modified_at = ?, lease_owner = NULL, lease_expires_at = NULL,
        wake_at = NULL, wait_types = NULL, paused_at = NULL
    FROM json_to_recordset(?::json) AS f(iid bigint, owner text, epoch bigint, status text,
        output text, error text)
    JOIN ok ON ok.iid = f.iid AND ok.lease_owner = f.owner AND ok.epoch = f.epoch
    WHERE i.iid = f.iid
)
SELECT iid, lease_owner, epoch, status FROM held
"""

# The same for the most common job, one checkpoint (a sequential workflow): plain parameters,
# which PostgreSQL runs faster than JSON input.
_WRITE_ONE_STEP = """
WITH held AS (
    SELECT iid, lease_owner, epoch, status FROM instances WHERE iid = ? FOR NO KEY UPDATE
), saved AS (
    INSERT INTO steps (iid, key, name, occurrence, kind, status, seq, config, attempts,
        output, error, started_at, ended_at, wake_at)
    SELECT held.iid, ?, ?, ?::int, ?, ?, ?::int, ?, ?, ?, ?, ?::float8, ?::float8, ?::float8
    FROM held WHERE held.lease_owner = ? AND held.epoch = ?
        AND held.status IN ('running', 'waitingForPause')
    ON CONFLICT (iid, key) DO UPDATE SET status = excluded.status, config = excluded.config,
        attempts = excluded.attempts, output = excluded.output, error = excluded.error,
        ended_at = excluded.ended_at, wake_at = excluded.wake_at
)
SELECT iid, lease_owner, epoch, status FROM held
"""


@dataclass(slots=True)
class Item:
    lease: Lease
    step: StepWrite | None = None
    finish: tuple[str, str | None, str | None] | None = None  # status, output, error


class Deferred:
    """A statement sent later (with the COMMIT, or before the next statement); rows() after."""

    def __init__(self, query: str, params: Sequence[Any]) -> None:
        self.query = query
        self.params = params
        self.cursor: Any = None

    def rows(self) -> list[Any]:
        assert self.cursor is not None, "the statement was never sent"
        return list(self.cursor.fetchall())


class _Empty:
    def fetchone(self) -> None:
        return None

    def fetchall(self) -> list[Any]:
        return []


class WriterConnection:
    """The writer's psycopg connection (autocommit), sending BEGIN only when needed."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self._begun = False  # the writer asked for a transaction
        self._open = False  # ... and BEGIN was sent
        self._deferred: list[Deferred] = []

    def execute(self, query: str, params: Sequence[Any] = ()) -> Any:
        if query == "BEGIN":
            self._check_alive()
            self._begun, self._open, self._deferred = True, False, []
            return _Empty()
        if query == "COMMIT":
            try:
                if self._begun and not self._open and len(self._deferred) <= 1:
                    # A transaction of one statement (or none) needs no BEGIN or COMMIT.
                    self._send_deferred()
                else:
                    self._flush()
                    self.conn.execute("COMMIT")
            finally:
                self._begun = self._open = False
            return _Empty()
        if query == "ROLLBACK":
            self._deferred = []
            was_open, self._begun, self._open = self._open, False, False
            if was_open or self.conn.info.transaction_status != TransactionStatus.IDLE:
                self.conn.execute("ROLLBACK")
            return _Empty()
        self._flush()
        return self.conn.execute(query, params)

    def defer(self, query: str, params: Sequence[Any]) -> Deferred:
        deferred = Deferred(query, params)
        self._deferred.append(deferred)
        if not self._begun:
            self._send_deferred()
        return deferred

    def _flush(self) -> None:
        if self._begun and not self._open:
            self.conn.execute("BEGIN")
            self._open = True
        self._send_deferred()

    def _send_deferred(self) -> None:
        deferred, self._deferred = self._deferred, []
        for item in deferred:
            item.cursor = self.conn.execute(item.query, item.params)

    def _check_alive(self) -> None:
        """Raise OperationalError if the server closed this connection while it was idle (a
        restart): a look at the socket, no round trip. The writer then reconnects."""
        pgconn = self.conn.pgconn
        if self.conn.closed or pgconn.status != ConnStatus.OK:
            raise psycopg.OperationalError("the connection is closed")
        poller = select.poll()
        poller.register(pgconn.socket, select.POLLIN)
        if poller.poll(0):  # idle, so only a notice or the goodbye of a server going away
            try:
                pgconn.consume_input()
            except psycopg.OperationalError:
                raise
            except psycopg.Error as exc:
                raise psycopg.OperationalError(str(exc)) from exc
            if pgconn.status != ConnStatus.OK:
                raise psycopg.OperationalError("the server closed the connection")

    def close(self) -> None:
        self.conn.close()


class Bulk:
    """Gathers consecutive checkpoints and finishes into one writer job."""

    def __init__(self, submit: Submit, now: Callable[[], float]) -> None:
        self._submit = submit
        self._now = now
        self._lock = threading.Lock()
        self._open: Pending | None = None
        self._open_lazy = False

    def add(self, item: Item, *, lazy: bool = False) -> asyncio.Future[Any]:
        """Queue a write; the future (of the running loop) resolves once it is committed."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        with self._lock:
            pending = self._open
            if pending is not None:
                pending.append((item, future))
                if self._open_lazy and not lazy:
                    # Someone waits now: wake the writer rather than let the lazy job linger.
                    self._submit(_nothing, guarded=True)
                    self._open_lazy = False
                return future
            pending = self._open = [(item, future)]
            self._open_lazy = lazy
        # Submitted outside the lock: a job that fails at once (the database is down) settles
        # its callers right here, in this thread, and that takes the lock.
        try:
            job = self._submit(lambda tx: self._run(tx, pending), lazy=lazy, guarded=True)
        except BaseException:
            self.seal()
            raise
        job.add_done_callback(lambda done: self._settle(pending, done))
        return future

    def seal(self) -> None:
        """Another write was queued: what comes next must not join a job queued before it."""
        with self._lock:
            self._open = None

    def _run(self, tx: Tx, pending: Pending) -> Any:
        with self._lock:
            if self._open is pending:
                self._open = None
            items = [item for item, _ in pending]
        if len(items) == 1 and items[0].step is not None:
            return _send(tx, _WRITE_ONE_STEP, _one_step(items[0].lease, items[0].step))
        now = self._now()
        leases: dict[int, dict[str, Any]] = {}
        steps: dict[tuple[int, str], dict[str, Any]] = {}
        finishes: dict[int, dict[str, Any]] = {}
        for item in items:
            lease = item.lease
            who = {"iid": lease.iid, "owner": lease.owner, "epoch": lease.epoch}
            leases[lease.iid] = who
            if item.step is not None:
                s = item.step
                # A later write of the same step wins (one statement cannot write a row twice).
                steps[(lease.iid, s.key)] = {
                    **who,
                    "key": s.key,
                    "name": s.name,
                    "occurrence": s.occurrence,
                    "kind": s.kind,
                    "status": s.status,
                    "seq": s.seq,
                    "config": s.config,
                    "attempts": s.attempts,
                    "output": s.output,
                    "error": s.error,
                    "started_at": s.started_at,
                    "ended_at": s.ended_at,
                    "wake_at": s.wake_at,
                }
            elif item.finish is not None:
                status, output, error = item.finish
                finishes[lease.iid] = {**who, "status": status, "output": output, "error": error}
        params = (
            _json(leases.values()),
            _json(steps.values()),
            now,
            now,
            _json(finishes.values()),
        )
        return _send(tx, _WRITE, params)

    def _settle(
        self,
        pending: Pending,
        done: concurrent.futures.Future[Any],
    ) -> None:
        """After the commit (or its failure), tell each caller how its own write went."""
        with self._lock:
            if self._open is pending:  # the batch failed before this job ran
                self._open = None
        error = done.exception()
        held: dict[int, tuple[str | None, int, Status]] = {}
        if error is None:
            value = done.result()
            try:
                rows = value.rows() if isinstance(value, Deferred) else value
                held = {row[0]: (row[1], row[2], parse_status(row[3])) for row in rows}
            except Exception as exc:  # pragma: no cover - results lost after the commit
                error = exc
        # One hand-over per event loop for the whole job, not one per write.
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]] = {}
        for item, future in pending:
            lease = item.lease
            found = held.get(lease.iid)
            outcome: Any
            if error is not None:
                outcome = error
            elif (
                found is None or found[:2] != (lease.owner, lease.epoch) or found[2] not in _ACTIVE
            ):
                outcome = LeaseLostError(f"instance {lease.iid} is no longer held by {lease.owner}")
            else:
                outcome = found[2] if item.step is not None else None
            by_loop.setdefault(future.get_loop(), []).append((future, outcome))
        for loop, outcomes in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                loop.call_soon_threadsafe(_deliver, outcomes)


def _deliver(outcomes: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for future, outcome in outcomes:
        if future.done():  # the caller stopped waiting; its write was committed all the same
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


def _send(tx: Tx, query: str, params: Sequence[Any]) -> Any:
    """Run with the COMMIT on the writer's connection (rows come later), else now."""
    sql = tx.dialect.sql(query)
    if isinstance(tx.conn, WriterConnection):
        return tx.conn.defer(sql, params)
    return list(tx.conn.execute(sql, params).fetchall())


def _one_step(lease: Lease, s: StepWrite) -> tuple[Any, ...]:
    return (
        lease.iid,
        s.key,
        s.name,
        s.occurrence,
        s.kind,
        s.status,
        s.seq,
        s.config,
        s.attempts,
        s.output,
        s.error,
        s.started_at,
        s.ended_at,
        s.wake_at,
        lease.owner,
        lease.epoch,
    )


def _json(rows: Any) -> str:
    return json.dumps(list(rows), separators=(",", ":"))


def _nothing(tx: Tx) -> None:
    return None
