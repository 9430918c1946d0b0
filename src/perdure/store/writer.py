"""One writer thread per process: group commit.

The writer takes every write queued since its last commit, runs each in its own savepoint (one
caller's failure never undoes another's) and commits them together: many instances finishing
steps at once share one fsync. Each caller still waits for its own record to be durable.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ..errors import DatabaseError, PerdureError
from .dialect import Dialect, Tx

T = TypeVar("T")


@dataclass(slots=True)
class Job:
    fn: Callable[[Tx], Any]
    future: Any  # a concurrent.futures.Future, or an asyncio.Future (see loop)
    guarded: bool = False
    """The job raises only from its guard, before it writes: it needs no savepoint."""
    loop: asyncio.AbstractEventLoop | None = None
    """When set, ``future`` is an asyncio future of this loop, settled with its whole batch."""


class Writer(threading.Thread):
    """Runs queued write functions, many per transaction.

    A lazy job (a write nobody waits for, such as "attempt started") does not start a commit of
    its own: it joins the next one, or is committed after ``linger`` seconds at the latest.
    """

    def __init__(self, dialect: Dialect, name: str, *, linger: float = 0.05) -> None:
        super().__init__(name=name, daemon=True)
        self.dialect = dialect
        self._jobs: deque[Job] = deque()
        self._eager = 0  # jobs in the queue that a caller waits for
        self._oldest_lazy: float | None = None
        self._cond = threading.Condition()
        self._stopping = False
        self._conn: Any = None
        self._tx: Tx = Tx(None, dialect)  # on self._conn, once connected
        self._busy = False  # a batch is running, in this thread or inline in a caller's
        self.max_batch = 512
        self.linger = linger

    def submit(
        self,
        fn: Callable[[Tx], T],
        *,
        lazy: bool = False,
        guarded: bool = False,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> Any:
        """A concurrent future, or with ``loop`` an asyncio future of that loop."""
        future: Any = concurrent.futures.Future() if loop is None else loop.create_future()
        with self._cond:
            if self._stopping:
                raise DatabaseError("the store is closed; open the App again")
            self._jobs.append(Job(fn, future, guarded, loop))
            if lazy:
                if self._oldest_lazy is None:
                    self._oldest_lazy = time.monotonic()
                    self._cond.notify()
            else:
                self._eager += 1
                self._cond.notify()
        return future

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()

    def try_inline(self, fn: Callable[[Tx], T], *, guarded: bool) -> asyncio.Future[T] | None:
        """Run one write at once in the caller's thread, if the writer has nothing else to do.

        For a lone sequential instance this saves two thread hand-overs per step; with more
        work about, writes queue up and share commits instead.
        """
        with self._cond:
            if self._stopping or self._jobs or self._busy:
                return None
            self._busy = True
        try:
            future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
            self._run_batch([Job(fn, future, guarded)])
        finally:
            with self._cond:
                self._busy = False
                if self._jobs:
                    self._cond.notify()
        return future

    def _ready(self) -> float | None:
        """None when a batch should run now, else how long to wait for one."""
        if self._busy:
            return 3600.0  # a caller is writing inline; it notifies when done
        if self._eager or self._stopping:
            return None
        if self._oldest_lazy is None:
            return 3600.0
        return max(0.0, self._oldest_lazy + self.linger - time.monotonic()) or None

    def run(self) -> None:
        while True:
            with self._cond:
                while (wait := self._ready()) is not None:
                    self._cond.wait(wait)
                if not self._jobs and self._stopping:
                    break
                batch = [self._jobs.popleft() for _ in range(min(len(self._jobs), self.max_batch))]
                self._eager = len(self._jobs)  # a full batch left some behind: go again now
                self._oldest_lazy = time.monotonic() if self._jobs else None
                self._busy = True
            try:
                self._run_batch(batch)
            finally:
                with self._cond:
                    self._busy = False
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # pragma: no cover - closing a broken connection
                pass

    def _run_batch(self, batch: list[Job], *, retry: bool = True) -> None:
        results: list[tuple[Job, Any, BaseException | None]] = []
        try:
            tx = self._begin()
            for job in batch:
                if job.guarded:
                    try:
                        results.append((job, job.fn(tx), None))
                    except PerdureError as exc:  # raised by the guard: nothing was written
                        results.append((job, None, exc))
                    continue
                if len(batch) == 1:
                    try:
                        results.append((job, job.fn(tx), None))
                    except Exception as exc:
                        if retry and isinstance(exc, self.dialect.retry_errors):
                            raise
                        tx.execute("ROLLBACK")
                        tx.execute(self.dialect.begin)
                        results.append((job, None, exc))
                    continue
                tx.execute("SAVEPOINT op")
                try:
                    value = job.fn(tx)
                except Exception as exc:
                    if retry and isinstance(exc, self.dialect.retry_errors):
                        raise
                    tx.execute("ROLLBACK TO SAVEPOINT op")
                    tx.execute("RELEASE SAVEPOINT op")
                    results.append((job, None, exc))
                else:
                    tx.execute("RELEASE SAVEPOINT op")
                    results.append((job, value, None))
            tx.execute("COMMIT")
        except Exception as exc:
            if retry and isinstance(exc, self.dialect.retry_errors):
                # The server chose this batch as a deadlock's victim: nothing of it was
                # written, and its jobs only read and write the database, so run it again.
                with contextlib.suppress(Exception):
                    Tx(self._conn, self.dialect).execute("ROLLBACK")
                self._run_batch(batch, retry=False)
                return
            # The whole transaction is lost (database locked, disk full, connection gone):
            # no write of this batch is durable, so every caller hears about it.
            self._reset()
            error = (
                exc
                if isinstance(exc, DatabaseError)
                else DatabaseError(f"database write failed: {exc}")
            )
            _settle_all([(job, None, error) for job in batch])
            return
        _settle_all(results)

    def _begin(self) -> Tx:
        """A transaction on a live connection. A connection that broke while idle (the server
        restarted) is replaced once, before any job of the batch ran."""
        if self._conn is not None:
            tx = self._tx
            try:
                tx.execute(self.dialect.begin)
                return tx
            except self.dialect.reconnect_errors:
                self._reset()
        self._conn = self.dialect.connect_writer()
        tx = self._tx = Tx(self._conn, self.dialect)
        tx.execute(self.dialect.begin)
        return tx

    def _reset(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.execute("ROLLBACK")
        except Exception:
            pass
        try:
            conn.close()
        except Exception:
            pass


def _settle(future: Any, value: Any, error: BaseException | None) -> None:
    # A caller that stopped waiting (cancelled) still had its write committed; nothing to tell.
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)
    except (concurrent.futures.InvalidStateError, asyncio.InvalidStateError):
        pass


def _settle_all(results: list[tuple[Job, Any, BaseException | None]]) -> None:
    """Hand a batch's results back: one wake-up per event loop, not one per write."""
    if len(results) == 1 and results[0][0].loop is None:  # a lone write (inline, or a caller's)
        _settle(results[0][0].future, results[0][1], results[0][2])
        return
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, Any, BaseException | None]]] = {}
    for job, value, error in results:
        if job.loop is None:
            _settle(job.future, value, error)
        else:
            by_loop.setdefault(job.loop, []).append((job.future, value, error))
    for loop, group in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(_settle_in_loop, group)


def _settle_in_loop(group: list[tuple[Any, Any, BaseException | None]]) -> None:
    for future, value, error in group:
        if future.done():  # cancelled: the write still happened, nobody is told
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)
