"""PostgreSQL: many workers on many machines sharing one database.

The SQL is the shared SqlStore's; this module supplies the dialect (``%s`` placeholders,
``FOR UPDATE SKIP LOCKED`` claims, ``strpos``), one writer connection per process doing group
commit, a psycopg_pool for reads, and a LISTEN thread that wakes idle workers when another
process creates work. Notifications are only hints: workers still poll, because a notification
sent while nobody listens (a reconnect, a restart) is gone.

Durability: ``full`` commits with ``synchronous_commit = on`` (a commit survives a crash of the
server machine); ``process`` with ``synchronous_commit = off``: a worker crash loses nothing, a
crash of the database server may lose the last fraction of a second of commits, never more and
never half of one. Times are the workers' clocks (epoch seconds); the store warns at open when
this machine's clock is far from the database's, since leases assume clocks agree.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import re
import select
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool, PoolTimeout

from ..errors import ConfigError, DatabaseError
from ..states import Status
from . import migrate
from .base import Lease, StepWrite
from .postgres_bulk import Bulk, Item, WriterConnection
from .sql import Dialect, SqlStore, Tx

T = TypeVar("T")
log = logging.getLogger("perdure.store")

DURABILITY_MODES = {"full": "on", "process": "off"}
"""synchronous_commit per durability: full waits for the WAL flush, process does not."""

CLOCK_SKEW_WARNING = 1.0
"""Seconds between this machine's clock and the database's above which open() warns."""


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "postgresql://..."
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + host))


def _reason(exc: BaseException) -> str:
    """The useful part of a libpq error: 'Connection refused', 'database "x" does not exist'."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    first = first.rsplit("failed: ", 1)[-1]
    return re.sub(r"^(FATAL|ERROR):\s+", "", re.sub(r"\s+", " ", first)).strip()


def unreachable(url: str, exc: BaseException) -> DatabaseError:
    return DatabaseError(
        f"cannot connect to PostgreSQL at {redact(url)}: {_reason(exc)}. Check that the server "
        "is running and reachable from here and that the URL's host, port, user, password and "
        "database are right (set it with App(database=...) or PERDURE_DATABASE)"
    )


def conninfo(url: str) -> str:
    """The URL with perdure's connection defaults where it sets none."""
    try:
        given = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise ConfigError(f"invalid PostgreSQL URL {redact(url)}: {_reason(exc)}") from None
    defaults: dict[str, str | int] = {
        "connect_timeout": 5,
        "application_name": "perdure",
        # Notice a server that vanished without closing the socket (a network cut).
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
    }
    return make_conninfo(url, **{k: v for k, v in defaults.items() if k not in given})


class PostgresDialect(Dialect):
    placeholder = "%s"
    begin = "BEGIN"
    for_update = " FOR UPDATE"
    skip_locked = " FOR UPDATE SKIP LOCKED"
    transient_errors = (psycopg.OperationalError,)
    reconnect_errors = (psycopg.OperationalError,)
    retry_errors = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)

    def __init__(self, url: str, durability: str) -> None:
        if durability not in DURABILITY_MODES:
            raise ConfigError(
                f"durability must be one of {', '.join(DURABILITY_MODES)}, got {durability!r}"
            )
        self.url = url
        self.conninfo = conninfo(url)
        self.synchronous_commit = DURABILITY_MODES[durability]
        self.channel = "perdure"

    def connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self.conninfo, autocommit=True)
        except psycopg.OperationalError as exc:
            raise unreachable(self.url, exc) from None

    def connect_writer(self) -> Any:
        conn = self.connect()
        conn.execute(f"SET synchronous_commit = {self.synchronous_commit}")
        return WriterConnection(conn)

    def connect_reader(self) -> Any:
        return self.connect()

    def instr(self, haystack: str, needle: str) -> str:
        return f"strpos({haystack}, {needle})"

    def migrate(self, tx: Tx) -> list[int]:
        # Many workers starting at once: one migrates, the others wait here and then find
        # nothing left to do. Per schema, so schemas of one database do not wait for each other.
        row = tx.one("SELECT current_schema()")
        schema = str(row[0]) if row and row[0] else "public"
        self.channel = f"perdure.{schema}"[:63]
        tx.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (f"perdure.migrate.{schema}",))
        return migrate.apply(tx, "postgres")

    def notify(self, tx: Tx) -> None:
        # Within one transaction PostgreSQL sends identical notifications once.
        tx.execute("SELECT pg_notify(?, '')", (self.channel,))


class _Listener(threading.Thread):
    """LISTENs on its own connection and calls back on every notification; reconnects (and
    calls back, since notifications were missed meanwhile) when the connection breaks."""

    def __init__(self, dialect: PostgresDialect, callback: Callable[[], None]) -> None:
        super().__init__(name="perdure-listen", daemon=True)
        self.dialect = dialect
        self.callback = callback
        self.stopping = threading.Event()
        self.listening = threading.Event()
        self._wake_read, self._wake_write = os.pipe()
        self._pipe_open = True
        self._pipe_lock = threading.Lock()

    def stop(self) -> None:
        with self._pipe_lock:  # never write to a descriptor closed (and maybe reused) since
            if not self.stopping.is_set() and self._pipe_open:
                os.write(self._wake_write, b"x")
            self.stopping.set()

    def _fire(self) -> None:
        try:
            self.callback()
        except Exception:  # the worker's event loop is gone: nobody to wake
            self.stop()

    def run(self) -> None:
        try:
            self._listen()
        finally:
            with self._pipe_lock:
                self._pipe_open = False
                os.close(self._wake_read)
                os.close(self._wake_write)

    def _listen(self) -> None:
        delay = 0.05
        while not self.stopping.is_set():
            try:
                with self.dialect.connect() as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.dialect.channel)))
                    self.listening.set()
                    delay = 0.05
                    self._fire()
                    sock = conn.pgconn.socket
                    poller = select.poll()  # not select(): descriptors may be above 1023
                    poller.register(sock, select.POLLIN)
                    poller.register(self._wake_read, select.POLLIN)
                    while not self.stopping.is_set():
                        ready = {fd for fd, _ in poller.poll(5000)}
                        if sock in ready and any(True for _ in conn.notifies(timeout=0)):
                            self._fire()  # one wake-up for all that arrived together
            except (DatabaseError, psycopg.Error) as exc:
                if self.listening.is_set():
                    log.warning("lost the notification connection, reconnecting: %s", exc)
            self.listening.clear()
            self.stopping.wait(delay)
            delay = min(delay * 2, 2.0)


class PostgresStore(SqlStore):
    """The Store on PostgreSQL. ``readers`` is the size of the read connection pool."""

    def __init__(self, url: str, *, durability: str = "full", readers: int = 4) -> None:
        self.dialect: PostgresDialect = PostgresDialect(url, durability)
        super().__init__(url, self.dialect, readers=readers)
        self._conns: ConnectionPool[Any] | None = None
        self._listeners: list[_Listener] = []
        self.clock_offset = 0.0
        """The database's clock minus this machine's, in seconds, measured at open."""
        self._bulk = Bulk(self._submit_bulk, self.now)

    async def open(self) -> None:
        if self._writer is not None:
            return
        await super().open()  # the writer connects and migrates: a clear error if unreachable
        try:
            await asyncio.to_thread(self._open_readers)
        except BaseException:
            await self.close()
            raise

    def _open_readers(self) -> None:
        pool: ConnectionPool[Any] = ConnectionPool(
            self.dialect.conninfo,
            min_size=1,
            max_size=max(1, self._readers),
            kwargs={"autocommit": True},
            name="perdure-read",
            open=False,
            timeout=10.0,
            reconnect_timeout=60.0,
        )
        try:
            pool.open(wait=True, timeout=10.0)
        except PoolTimeout:
            pool.close()
            raise DatabaseError(
                f"cannot open read connections to PostgreSQL at {redact(self.url)}; check that "
                "the server accepts more connections (max_connections)"
            ) from None
        self._conns = pool
        self.clock_offset = self._measure_clock(pool)
        if abs(self.clock_offset) > CLOCK_SKEW_WARNING:
            log.warning(
                "this machine's clock differs from the database's by %.1f s; leases and timers "
                "assume synchronised clocks: run NTP on every worker machine",
                self.clock_offset,
            )

    @staticmethod
    def _measure_clock(pool: ConnectionPool[Any]) -> float:
        with pool.connection() as conn:
            before = time.time()
            row = conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()
            after = time.time()
        return float(row[0]) - (before + after) / 2 if row else 0.0

    async def close(self) -> None:
        listeners, self._listeners = self._listeners, []
        for listener in listeners:
            listener.stop()
        await super().close()
        pool, self._conns = self._conns, None
        if pool is not None:
            await asyncio.to_thread(pool.close)
        for listener in listeners:
            await asyncio.to_thread(listener.join, 5.0)

    # -- writes: checkpoints and finishes go in bulk (see postgres_bulk)

    def _submit(
        self,
        fn: Callable[[Tx], T],
        *,
        lazy: bool = False,
        guarded: bool = False,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> Any:
        self._bulk.seal()
        return super()._submit(fn, lazy=lazy, guarded=guarded, loop=loop)

    def _submit_bulk(
        self, fn: Callable[[Tx], T], *, lazy: bool = False, guarded: bool = False
    ) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = super()._submit(fn, lazy=lazy, guarded=guarded)
        return future

    def save_step(
        self, lease: Lease, step: StepWrite, *, durable: bool = True
    ) -> asyncio.Future[Status]:
        return self._bulk.add(Item(lease, step=step), lazy=not durable)

    async def finish(
        self, lease: Lease, status: Status, output: str | None, error: str | None
    ) -> None:
        await self._bulk.add(Item(lease, finish=(status.value, output, error)))

    # -- reads

    def _run_read(self, fn: Callable[[Tx], T]) -> T:
        pool = self._conns
        if pool is None:
            raise DatabaseError("the store is not open; use `async with app:` or call app.open()")
        try:
            try:
                return self._read_once(pool, fn)
            except psycopg.OperationalError:
                # Pooled connections die together when the server restarts: drop the broken
                # ones and try once more on a fresh connection.
                pool.check()
                return self._read_once(pool, fn)
        except psycopg.OperationalError as exc:
            raise DatabaseError(f"database read failed: {_reason(exc)}") from None
        except PoolTimeout:
            raise DatabaseError(
                f"no connection to PostgreSQL at {redact(self.url)} within 10 s; is it up?"
            ) from None

    def _read_once(self, pool: ConnectionPool[Any], fn: Callable[[Tx], T]) -> T:
        with pool.connection() as conn:
            return fn(Tx(conn, self.dialect))

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        listener = _Listener(self.dialect, callback)
        self._listeners.append(listener)
        listener.start()

        return listener.stop
