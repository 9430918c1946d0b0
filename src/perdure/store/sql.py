"""The SQL behind every backend, over DB-API connections.

Writes go through the group-commit writer (writer.py); reads run on a small thread pool with
their own connections. A backend module supplies a ``Dialect`` (dialect.py): how to connect,
its placeholders and its few statements that differ.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from ..errors import (
    DatabaseError,
    InstanceExistsError,
    InstanceNotFoundError,
    InvalidTransitionError,
    LeaseLostError,
    ValidationError,
)
from ..states import TERMINAL, Status, next_status, parse_status
from .base import (
    Claim,
    EventRow,
    InstanceRow,
    Lease,
    NewInstance,
    StepRow,
    StepWrite,
    WorkflowRow,
)
from .dialect import Dialect as Dialect
from .dialect import Row
from .dialect import Tx as Tx
from .writer import Writer

T = TypeVar("T")

INSTANCE_COLUMNS = (
    "iid, workflow, id, status, params, created_at, version, started_at, ended_at, output, "
    "error, wake_at, paused_at, lease_owner, lease_expires_at, epoch, wait_types, modified_at"
)
STEP_COLUMNS = (
    "key, name, occurrence, kind, status, seq, config, attempts, output, error, started_at, "
    "ended_at, wake_at"
)
_ACTIVE_SQL = "('running', 'waitingForPause')"
# The statements of every step checkpoint, built once (the hot path of a sequential step).
_FENCE_SQL = (
    "SELECT status FROM instances WHERE iid = ? AND lease_owner = ? AND epoch = ? "
    f"AND status IN {_ACTIVE_SQL}"
)
_UPSERT_STEP_SQL = (
    f"INSERT INTO steps (iid, {STEP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (iid, key) DO UPDATE SET status = excluded.status, "
    "config = excluded.config, attempts = excluded.attempts, output = excluded.output, "
    "error = excluded.error, ended_at = excluded.ended_at, wake_at = excluded.wake_at"
)


def _no_op() -> None:
    return None


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def instance_from_row(row: Row) -> InstanceRow:
    return InstanceRow(
        iid=row[0],
        workflow=row[1],
        id=row[2],
        status=parse_status(row[3]),
        params=_loads(row[4]),
        created_at=row[5],
        version=row[6],
        started_at=row[7],
        ended_at=row[8],
        output=_loads(row[9]),
        error=_loads(row[10]),
        wake_at=row[11],
        paused_at=row[12],
        lease_owner=row[13],
        lease_expires_at=row[14],
        epoch=row[15],
        wait_types=row[16],
        modified_at=row[17],
    )


def step_from_row(row: Row) -> StepRow:
    return StepRow(
        key=row[0],
        name=row[1],
        occurrence=row[2],
        kind=row[3],
        status=row[4],
        seq=row[5],
        config=_loads(row[6]),
        attempts=_loads(row[7]) or [],
        output=_loads(row[8]),
        error=_loads(row[9]),
        started_at=row[10],
        ended_at=row[11],
        wake_at=row[12],
    )


class SqlStore:
    """The Store interface over a Dialect. Backends subclass it to pick their dialect."""

    def __init__(self, url: str, dialect: Dialect, *, readers: int = 4) -> None:
        self.url = url
        self.dialect = dialect
        self._readers = readers
        self._writer: Writer | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._reader_conns: list[Any] = []
        self._inline_hint: Callable[[], bool] | None = None
        self._lock = threading.Lock()

    # -- plumbing

    def now(self) -> float:
        return time.time()

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` (from another thread) when another process may have made work
        runnable; returns the function that stops it. A hint: workers poll anyway, and a
        backend that cannot notify (SQLite) never calls it."""
        return _no_op

    async def open(self) -> None:
        if self._writer is not None:
            return
        self._writer = Writer(self.dialect, f"perdure-writer:{self.url}")
        self._writer.start()
        self._pool = concurrent.futures.ThreadPoolExecutor(self._readers, "perdure-reader")
        try:
            await self._write(self.dialect.migrate)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.stop()
            await asyncio.to_thread(writer.join)
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        with self._lock:
            conns, self._reader_conns = self._reader_conns, []
        for conn in conns:
            try:
                conn.close()
            except Exception:
                pass

    def _submit(
        self,
        fn: Callable[[Tx], T],
        *,
        lazy: bool = False,
        guarded: bool = False,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> Any:
        """Queue a write; returns a concurrent future, or with ``loop`` an asyncio one."""
        if self._writer is None:
            raise DatabaseError("the store is not open; use `async with app:` or call app.open()")
        return self._writer.submit(fn, lazy=lazy, guarded=guarded, loop=loop)

    def set_inline_hint(self, hint: Callable[[], bool] | None) -> None:
        """``hint()`` true means no other instance would wait while a write runs inline."""
        self._inline_hint = hint if self.dialect.inline_writes else None

    def _submit_here(
        self, fn: Callable[[Tx], T], *, lazy: bool = False, guarded: bool = False
    ) -> asyncio.Future[T]:
        hint = self._inline_hint
        if not lazy and hint is not None and self._writer is not None and hint():
            done = self._writer.try_inline(fn, guarded=guarded)
            if done is not None:
                return done
        future: asyncio.Future[T] = self._submit(
            fn, lazy=lazy, guarded=guarded, loop=asyncio.get_running_loop()
        )
        return future

    async def _write(self, fn: Callable[[Tx], T], *, guarded: bool = False) -> T:
        return await self._submit_here(fn, guarded=guarded)

    def _reader(self) -> Tx:
        tx: Tx | None = getattr(self._local, "tx", None)
        if tx is None:
            conn = self.dialect.connect_reader()
            with self._lock:
                self._reader_conns.append(conn)
            tx = Tx(conn, self.dialect)
            self._local.tx = tx
        return tx

    def _run_read(self, fn: Callable[[Tx], T]) -> T:
        try:
            return fn(self._reader())
        except self.dialect.transient_errors as exc:
            self._local.tx = None
            raise DatabaseError(f"database read failed: {exc}") from exc

    async def _read(self, fn: Callable[[Tx], T]) -> T:
        if self._pool is None:
            raise DatabaseError("the store is not open; use `async with app:` or call app.open()")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._run_read, fn)

    # -- workflows

    async def register_workflow(
        self, name: str, class_path: str, binding: str, version: str, max_concurrency: int | None
    ) -> None:
        now = self.now()

        def op(tx: Tx) -> None:
            tx.execute(
                "INSERT INTO workflows (name, class_path, binding, version, max_concurrency, "
                "created_at, modified_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET class_path = excluded.class_path, "
                "binding = excluded.binding, version = excluded.version, "
                "max_concurrency = excluded.max_concurrency, modified_at = excluded.modified_at",
                (name, class_path, binding, version, max_concurrency, now, now),
            )

        await self._write(op)

    async def list_workflows(self) -> list[WorkflowRow]:
        rows = await self._read(
            lambda tx: tx.all(
                "SELECT name, class_path, binding, version, created_at, modified_at, "
                "max_concurrency FROM workflows ORDER BY name"
            )
        )
        return [WorkflowRow(*row) for row in rows]

    async def get_workflow(self, name: str) -> WorkflowRow | None:
        row = await self._read(
            lambda tx: tx.one(
                "SELECT name, class_path, binding, version, created_at, modified_at, "
                "max_concurrency FROM workflows WHERE name = ?",
                (name,),
            )
        )
        return WorkflowRow(*row) if row else None

    async def delete_workflow(self, name: str) -> bool:
        def op(tx: Tx) -> bool:
            found = tx.one("DELETE FROM workflows WHERE name = ? RETURNING name", (name,))
            subquery = "(SELECT iid FROM instances WHERE workflow = ?)"
            tx.execute(f"DELETE FROM steps WHERE iid IN {subquery}", (name,))
            tx.execute(f"DELETE FROM events WHERE iid IN {subquery}", (name,))
            tx.execute("DELETE FROM instances WHERE workflow = ?", (name,))
            return found is not None

        return await self._write(op)

    # -- instances, for clients

    async def create_instances(
        self, workflow: str, version: str, items: list[NewInstance], *, skip_existing: bool
    ) -> list[str]:
        now = self.now()

        def op(tx: Tx) -> list[str]:
            created: list[str] = []
            for item in items:
                row = tx.one(
                    "INSERT INTO instances (workflow, id, status, params, version, created_at, "
                    "modified_at, wake_at) VALUES (?, ?, 'queued', ?, ?, ?, ?, ?) "
                    "ON CONFLICT (workflow, id) DO NOTHING RETURNING id",
                    (workflow, item.id, item.params, version, now, now, now),
                )
                if row is not None:
                    created.append(item.id)
                elif not skip_existing:
                    raise InstanceExistsError(
                        f"an instance with id {item.id!r} already exists in workflow "
                        f"{workflow!r}; pick another id, or restart() the existing instance"
                    )
            if created:
                self.dialect.notify(tx)
            return created

        return await self._write(op)

    async def get_instance(self, workflow: str, instance_id: str) -> InstanceRow | None:
        row = await self._read(
            lambda tx: tx.one(
                f"SELECT {INSTANCE_COLUMNS} FROM instances WHERE workflow = ? AND id = ?",
                (workflow, instance_id),
            )
        )
        return instance_from_row(row) if row else None

    async def latest_instance(self, workflow: str) -> InstanceRow | None:
        row = await self._read(
            lambda tx: tx.one(
                f"SELECT {INSTANCE_COLUMNS} FROM instances WHERE workflow = ? "
                "ORDER BY created_at DESC, iid DESC LIMIT 1",
                (workflow,),
            )
        )
        return instance_from_row(row) if row else None

    async def list_instances(
        self, workflow: str, *, status: str | None, limit: int, before: tuple[float, int] | None
    ) -> list[InstanceRow]:
        where = ["workflow = ?"]
        params: list[Any] = [workflow]
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if before is not None:
            where.append("(created_at < ? OR (created_at = ? AND iid < ?))")
            params += [before[0], before[0], before[1]]
        sql = (
            f"SELECT {INSTANCE_COLUMNS} FROM instances WHERE {' AND '.join(where)} "
            "ORDER BY created_at DESC, iid DESC LIMIT ?"
        )
        rows = await self._read(lambda tx: tx.all(sql, [*params, limit]))
        return [instance_from_row(row) for row in rows]

    async def count_by_status(self, workflow: str | None) -> dict[str, dict[str, int]]:
        sql = "SELECT workflow, status, count(*) FROM instances GROUP BY workflow, status"
        params: tuple[str, ...] = ()
        if workflow is not None:
            sql = sql.replace("GROUP BY", "WHERE workflow = ? GROUP BY")
            params = (workflow,)
        rows = await self._read(lambda tx: tx.all(sql, params))
        counts: dict[str, dict[str, int]] = {}
        for name, status, count in rows:
            counts.setdefault(name, {})[status] = int(count)
        return counts

    async def get_steps(self, iid: int) -> list[StepRow]:
        rows = await self._read(
            lambda tx: tx.all(
                f"SELECT {STEP_COLUMNS} FROM steps WHERE iid = ? ORDER BY seq", (iid,)
            )
        )
        return [step_from_row(row) for row in rows]

    async def get_events(self, iid: int) -> list[EventRow]:
        rows = await self._read(
            lambda tx: tx.all(
                "SELECT seq, type, payload, received_at, consumed_by FROM events WHERE iid = ? "
                "ORDER BY seq",
                (iid,),
            )
        )
        return [EventRow(r[0], r[1], _loads(r[2]), r[3], r[4]) for r in rows]

    async def activity(self, workflow: str, since: float, bucket: float) -> list[dict[str, Any]]:
        """Instances created and failed per time bucket since ``since``."""
        rows = await self._read(
            lambda tx: tx.all(
                "SELECT created_at, status, ended_at FROM instances WHERE workflow = ? "
                "AND created_at >= ? ORDER BY created_at LIMIT 200000",
                (workflow, since),
            )
        )
        buckets: dict[int, dict[str, Any]] = {}
        for created_at, status, _ended in rows:
            b = buckets.setdefault(int((created_at - since) // bucket), {"started": 0, "failed": 0})
            b["started"] += 1
            if status == Status.ERRORED:
                b["failed"] += 1
        return [
            {"start": since + index * bucket, **counts} for index, counts in sorted(buckets.items())
        ]

    async def control(
        self,
        workflow: str,
        instance_id: str,
        action: str,
        restart_from: tuple[str, int, str] | None,
    ) -> InstanceRow:
        now = self.now()
        dialect = self.dialect

        def op(tx: Tx) -> InstanceRow:
            row = tx.one(
                f"SELECT {INSTANCE_COLUMNS} FROM instances WHERE workflow = ? AND id = ?"
                f"{dialect.for_update}",
                (workflow, instance_id),
            )
            if row is None:
                raise InstanceNotFoundError(f"no instance {instance_id!r} in workflow {workflow!r}")
            inst = instance_from_row(row)
            target = next_status(action, inst.status)
            if target is None:
                raise InvalidTransitionError(
                    f"cannot {action} instance {instance_id!r}: it is {inst.status.value}"
                    + ("; restart() runs it again" if inst.status in TERMINAL else "")
                )
            iid = inst.iid
            if action == "pause" and target != inst.status:
                if target == Status.PAUSED:
                    tx.execute(
                        "UPDATE instances SET status = 'paused', paused_at = ?, modified_at = ? "
                        "WHERE iid = ?",
                        (now, now, iid),
                    )
                else:
                    tx.execute(
                        "UPDATE instances SET status = 'waitingForPause', modified_at = ? "
                        "WHERE iid = ?",
                        (now, iid),
                    )
            elif action == "resume" and inst.status == Status.PAUSED:
                delta = max(0.0, now - (inst.paused_at or now))
                tx.execute(
                    "UPDATE steps SET wake_at = wake_at + ? WHERE iid = ? AND wake_at IS NOT NULL "
                    "AND status IN ('sleeping', 'retrying', 'waiting')",
                    (delta, iid),
                )
                wake = now if inst.wake_at is None else inst.wake_at + delta
                if inst.wait_types and self._event_pending(tx, iid, inst.wait_types):
                    wake = now  # an event came in while paused
                status = Status.WAITING if wake > now else Status.QUEUED
                tx.execute(
                    "UPDATE instances SET status = ?, wake_at = ?, paused_at = NULL, "
                    "modified_at = ? WHERE iid = ?",
                    (status.value, wake, now, iid),
                )
                if status == Status.QUEUED:
                    self.dialect.notify(tx)
            elif action == "resume" and inst.status == Status.WAITING_FOR_PAUSE:
                tx.execute(
                    "UPDATE instances SET status = 'running', modified_at = ? WHERE iid = ?",
                    (now, iid),
                )
            elif action == "terminate":
                tx.execute(
                    "UPDATE instances SET status = 'terminated', ended_at = ?, modified_at = ?, "
                    "epoch = epoch + 1, lease_owner = NULL, lease_expires_at = NULL, "
                    "wake_at = NULL, wait_types = NULL WHERE iid = ?",
                    (now, now, iid),
                )
            elif action == "restart":
                self._erase_history(tx, iid, restart_from, instance_id)
                tx.execute(
                    "UPDATE instances SET status = 'queued', wake_at = ?, modified_at = ?, "
                    "epoch = epoch + 1, lease_owner = NULL, lease_expires_at = NULL, "
                    "output = NULL, error = NULL, ended_at = NULL, paused_at = NULL, "
                    "wait_types = NULL WHERE iid = ?",
                    (now, now, iid),
                )
                self.dialect.notify(tx)
            fresh = tx.one(f"SELECT {INSTANCE_COLUMNS} FROM instances WHERE iid = ?", (iid,))
            assert fresh is not None
            return instance_from_row(fresh)

        return await self._write(op)

    @staticmethod
    def _erase_history(
        tx: Tx, iid: int, restart_from: tuple[str, int, str] | None, instance_id: str
    ) -> None:
        if restart_from is None:
            tx.execute("DELETE FROM steps WHERE iid = ?", (iid,))
            tx.execute("DELETE FROM events WHERE iid = ?", (iid,))
            return
        name, occurrence, kind = restart_from
        found = tx.one(
            "SELECT seq FROM steps WHERE iid = ? AND name = ? AND occurrence = ? AND kind = ?",
            (iid, name, occurrence, kind),
        )
        if found is None:
            raise ValidationError(
                f"cannot restart instance {instance_id!r} from step {name!r} "
                f"(occurrence {occurrence}, kind {kind}): no such step in its history"
            )
        tx.execute(
            "DELETE FROM events WHERE iid = ? AND (consumed_by IS NULL OR consumed_by IN "
            "(SELECT key FROM steps WHERE iid = ? AND seq >= ?))",
            (iid, iid, found[0]),
        )
        tx.execute("DELETE FROM steps WHERE iid = ? AND seq >= ?", (iid, found[0]))

    async def send_event(self, workflow: str, instance_id: str, type: str, payload: str) -> int:
        now = self.now()
        instr = self.dialect.instr("wait_types", "?")

        def op(tx: Tx) -> int:
            row = tx.one(
                "SELECT iid, status FROM instances WHERE workflow = ? AND id = ?",
                (workflow, instance_id),
            )
            if row is None:
                raise InstanceNotFoundError(f"no instance {instance_id!r} in workflow {workflow!r}")
            iid, status = row
            if parse_status(status) in TERMINAL:
                raise InvalidTransitionError(
                    f"cannot send an event to instance {instance_id!r}: it is {status}"
                )
            seq_row = tx.one(
                "INSERT INTO events (iid, type, payload, received_at) VALUES (?, ?, ?, ?) "
                "RETURNING seq",
                (iid, type, payload, now),
            )
            assert seq_row is not None
            tx.execute(
                f"UPDATE instances SET wake_at = ?, modified_at = ? WHERE iid = ? "
                f"AND status = 'waiting' AND {instr} > 0",
                (now, now, iid, f",{type},"),
            )
            self.dialect.notify(tx)
            return int(seq_row[0])

        return await self._write(op)

    # -- worker

    def _claim_sql(self, workflows: int, *, expired: bool) -> str:
        """Lease due instances (or, with ``expired``, those whose worker died), oldest first.

        Two statements rather than one UNION: PostgreSQL cannot lock rows (SKIP LOCKED) under
        a UNION, and each branch then walks its own partial index in order."""
        names = ", ".join("?" for _ in range(workflows))
        if expired:
            # Restating the partial index's condition lets SQLite use it.
            due, order = (
                "status IN ('running', 'waitingForPause') AND status = 'running' "
                "AND lease_expires_at < ?",
                "lease_expires_at",
            )
        else:
            due, order = "status IN ('queued', 'waiting') AND wake_at <= ?", "wake_at"
        return (
            f"UPDATE instances SET status = CASE status WHEN 'waitingForPause' THEN status "
            f"ELSE 'running' END, lease_owner = ?, lease_expires_at = ?, epoch = epoch + 1, "
            f"started_at = COALESCE(started_at, ?), modified_at = ?, wake_at = NULL, "
            f"wait_types = NULL WHERE iid IN (SELECT iid FROM instances WHERE {due} "
            f"AND (workflow || '') IN ({names}) ORDER BY {order} LIMIT ?{self.dialect.skip_locked}"
            f") RETURNING {INSTANCE_COLUMNS}"
        )

    def _free_slots(self, tx: Tx, workflows: list[str], now: float) -> dict[str, int]:
        """Free slots of the workflows that have a max_concurrency, counted across all workers.

        The workflow rows stay locked until commit, so concurrent claims count one at a time."""
        marks = ", ".join("?" for _ in workflows)
        limits = tx.all(
            f"SELECT name, max_concurrency FROM workflows WHERE name IN ({marks}) "
            f"AND max_concurrency IS NOT NULL ORDER BY name{self.dialect.for_update}",
            workflows,
        )
        if not limits:
            return {}
        free = {name: int(limit) for name, limit in limits}
        marks = ", ".join("?" for _ in free)
        # Expired leases do not count: their instances are claimable, or nothing could free them.
        for name, running in tx.all(
            f"SELECT workflow, count(*) FROM instances WHERE status IN {_ACTIVE_SQL} "
            f"AND lease_expires_at >= ? AND workflow IN ({marks}) GROUP BY workflow",
            [now, *free],
        ):
            free[name] -= int(running)
        return free

    async def claim(
        self, owner: str, limit: int, lease_seconds: float, workflows: list[str]
    ) -> list[Claim]:
        now = self.now()
        lease = (owner, now + lease_seconds, now, now)

        def op(tx: Tx) -> list[Claim]:
            # A worker that died while finishing work before a pause leaves a pause behind.
            tx.execute(
                "UPDATE instances SET status = 'paused', paused_at = ?, lease_owner = NULL, "
                "lease_expires_at = NULL, wake_at = COALESCE(wake_at, ?) "
                "WHERE status IN ('running', 'waitingForPause') AND status = 'waitingForPause' "
                "AND lease_expires_at < ?",
                (now, now, now),
            )
            free = self._free_slots(tx, workflows, now)
            groups: list[tuple[list[str], str | None]] = [
                ([w for w in workflows if w not in free], None)
            ]
            groups += [([name], name) for name in free]
            rows: list[Row] = []
            for expired in (True, False):
                for names, limited in groups:
                    room = limit - len(rows)
                    if limited is not None:
                        room = min(room, free[limited])
                    if not names or room <= 0:
                        continue
                    got = tx.all(
                        self._claim_sql(len(names), expired=expired),
                        (*lease, now, *names, room),
                    )
                    rows += got
                    if limited is not None:
                        free[limited] -= len(got)
            if not rows:
                return []
            instances = [instance_from_row(row) for row in rows]
            steps: dict[int, list[StepRow]] = {inst.iid: [] for inst in instances}
            marks = ", ".join("?" for _ in instances)
            for row in tx.all(
                f"SELECT iid, {STEP_COLUMNS} FROM steps WHERE iid IN ({marks}) ORDER BY iid, seq",
                [inst.iid for inst in instances],
            ):
                steps[row[0]].append(step_from_row(row[1:]))
            return [
                Claim(Lease(inst.iid, owner, inst.epoch), inst, steps[inst.iid])
                for inst in instances
            ]

        return await self._write(op, guarded=True)

    async def heartbeat(
        self, owner: str, leases: list[Lease], lease_seconds: float
    ) -> dict[int, Status]:
        if not leases:
            return {}
        now = self.now()
        epochs = {lease.iid: lease.epoch for lease in leases}

        def op(tx: Tx) -> dict[int, Status]:
            held: dict[int, Status] = {}
            ids = list(epochs)
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ", ".join("?" for _ in chunk)
                for iid, epoch, status in tx.all(
                    f"UPDATE instances SET lease_expires_at = ? WHERE lease_owner = ? "
                    f"AND status IN {_ACTIVE_SQL} AND iid IN ({marks}) RETURNING iid, epoch, status",
                    [now + lease_seconds, owner, *chunk],
                ):
                    if epochs.get(iid) == epoch:
                        held[iid] = parse_status(status)
            return held

        return await self._write(op, guarded=True)

    async def lease_owners(self) -> list[str]:
        rows = await self._read(
            lambda tx: tx.all(
                "SELECT DISTINCT lease_owner FROM instances "
                "WHERE status IN ('running', 'waitingForPause') AND lease_owner IS NOT NULL"
            )
        )
        return [row[0] for row in rows]

    async def expire_leases(self, owners: list[str]) -> int:
        """End the leases of owners known to be dead, so their instances are claimable now."""
        now = self.now()
        marks = ", ".join("?" for _ in owners)

        def op(tx: Tx) -> int:
            rows = tx.all(
                f"UPDATE instances SET lease_expires_at = ? WHERE lease_owner IN ({marks}) "
                "AND status IN ('running', 'waitingForPause') RETURNING iid",
                [now - 1, *owners],
            )
            return len(rows)

        return await self._write(op)

    async def next_wake_at(self, workflows: list[str]) -> float | None:
        """The earliest timer or lease expiry among ``workflows``' instances."""
        names = ", ".join("?" for _ in workflows)
        sql = (
            "SELECT min(t) FROM (SELECT * FROM (SELECT wake_at AS t FROM instances "
            f"WHERE status IN ('queued', 'waiting') AND (workflow || '') IN ({names}) "
            "ORDER BY wake_at LIMIT 1) AS due UNION ALL SELECT * FROM (SELECT lease_expires_at "
            "AS t FROM instances WHERE status IN ('running', 'waitingForPause') "
            f"AND (workflow || '') IN ({names}) ORDER BY lease_expires_at LIMIT 1) AS leased) "
            "AS timers"
        )
        row = await self._read(lambda tx: tx.one(sql, [*workflows, *workflows]))
        return None if row is None or row[0] is None else float(row[0])

    def _event_pending(self, tx: Tx, iid: int, wait_types: str) -> bool:
        """Is an unconsumed event of one of ``wait_types`` (",a,b,") waiting for this instance?"""
        instr = self.dialect.instr("?", "',' || type || ','")
        row = tx.one(
            f"SELECT 1 FROM events WHERE iid = ? AND consumed_by IS NULL AND {instr} > 0 LIMIT 1",
            (iid, wait_types),
        )
        return row is not None

    @staticmethod
    def _fence(tx: Tx, lease: Lease, now: float) -> Status:
        """The instance's status, if this lease still holds it (inside the write transaction)."""
        row = tx.one(_FENCE_SQL + tx.dialect.for_update, (lease.iid, lease.owner, lease.epoch))
        if row is None:
            raise LeaseLostError(f"instance {lease.iid} is no longer held by {lease.owner}")
        return parse_status(row[0])

    @staticmethod
    def _upsert_step(tx: Tx, iid: int, step: StepWrite) -> None:
        tx.execute(
            _UPSERT_STEP_SQL,
            (
                iid,
                step.key,
                step.name,
                step.occurrence,
                step.kind,
                step.status,
                step.seq,
                step.config,
                step.attempts,
                step.output,
                step.error,
                step.started_at,
                step.ended_at,
                step.wake_at,
            ),
        )

    def save_step(
        self, lease: Lease, step: StepWrite, *, durable: bool = True
    ) -> asyncio.Future[Status]:
        now = self.now()

        def op(tx: Tx) -> Status:
            status = self._fence(tx, lease, now)
            self._upsert_step(tx, lease.iid, step)
            return status

        return self._submit_here(op, lazy=not durable, guarded=True)

    async def consume_event(self, lease: Lease, step: StepWrite, type: str) -> EventRow | None:
        now = self.now()

        def op(tx: Tx) -> EventRow | None:
            self._fence(tx, lease, now)
            row = tx.one(
                "SELECT seq, type, payload, received_at FROM events WHERE iid = ? AND type = ? "
                "AND consumed_by IS NULL ORDER BY seq LIMIT 1",
                (lease.iid, type),
            )
            if row is None:
                self._upsert_step(tx, lease.iid, step)  # the wait is on record, with its timeout
                return None
            event = EventRow(row[0], row[1], _loads(row[2]), row[3], step.key)
            output = json.dumps(
                {"type": event.type, "payload": event.payload, "timestamp": event.received_at},
                separators=(",", ":"),
            )
            tx.execute("UPDATE events SET consumed_by = ? WHERE seq = ?", (step.key, event.seq))
            done = replace(step, status="success", output=output, ended_at=now, wake_at=None)
            self._upsert_step(tx, lease.iid, done)
            return event

        return await self._write(op, guarded=True)

    async def suspend(self, lease: Lease, wake_at: float | None, wait_types: list[str]) -> Status:
        now = self.now()
        types = "," + ",".join(wait_types) + "," if wait_types else None

        def op(tx: Tx) -> Status:
            self._fence(tx, lease, now)
            wake = now if wake_at is None else wake_at
            if types is not None and self._event_pending(tx, lease.iid, types):
                wake = now  # an event came in while we ran: go again at once
            row = tx.one(
                "UPDATE instances SET status = CASE status WHEN 'waitingForPause' THEN 'paused' "
                "ELSE 'waiting' END, paused_at = CASE status WHEN 'waitingForPause' THEN ? "
                "ELSE paused_at END, wake_at = ?, wait_types = ?, lease_owner = NULL, "
                "lease_expires_at = NULL, modified_at = ? WHERE iid = ? RETURNING status",
                (now, wake, types, now, lease.iid),
            )
            assert row is not None
            return parse_status(row[0])

        return await self._write(op, guarded=True)

    async def finish(
        self, lease: Lease, status: Status, output: str | None, error: str | None
    ) -> None:
        now = self.now()

        def op(tx: Tx) -> None:
            self._fence(tx, lease, now)
            tx.execute(
                "UPDATE instances SET status = ?, output = ?, error = ?, ended_at = ?, "
                "modified_at = ?, lease_owner = NULL, lease_expires_at = NULL, wake_at = NULL, "
                "wait_types = NULL, paused_at = NULL WHERE iid = ?",
                (status.value, output, error, now, now, lease.iid),
            )

        await self._write(op, guarded=True)

    async def release(self, lease: Lease) -> None:
        now = self.now()

        def op(tx: Tx) -> None:
            try:
                self._fence(tx, lease, now)
            except LeaseLostError:
                return
            tx.execute(
                "UPDATE instances SET status = CASE status WHEN 'waitingForPause' THEN 'paused' "
                "ELSE 'queued' END, paused_at = CASE status WHEN 'waitingForPause' THEN ? "
                "ELSE paused_at END, wake_at = ?, lease_owner = NULL, lease_expires_at = NULL "
                "WHERE iid = ?",
                (now, now, lease.iid),
            )
            self.dialect.notify(tx)

        await self._write(op, guarded=True)
