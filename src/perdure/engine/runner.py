"""Replays one instance against its stored steps and runs the next new ones.

A run calls the user's ``run(event, step)`` from the top. Each ``step.*`` call finds its row by
key (name + occurrence): a stored result returns at once, a stored failure is raised again, and a
new step runs and is checkpointed before the workflow moves on. A sleep, an event wait or a retry
delay raises ``Suspend`` (a BaseException, so ``except Exception`` in user code cannot swallow it):
the run unwinds, the instance gets a wake-up time in the database, and nothing stays in memory.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import json
import os
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from .. import validate
from ..durations import Duration, to_seconds
from ..entrypoint import StepEvent, WorkflowEntrypoint, WorkflowEvent
from ..errors import (
    DatabaseError,
    LeaseLostError,
    NonDeterminismError,
    NonRetryableError,
    PayloadError,
    StepFailedError,
    ValidationError,
    WorkflowTimeoutError,
    error_info,
)
from ..retry import RetryPolicy, StepConfig, resolve_config
from ..serde import dumps, scalar_json
from ..states import Status
from ..step import StepContext, WorkflowStep
from ..store.base import Claim, StepRow, StepWrite, Store
from .attempt import AttemptTimer, attempts_json

MAX_STEPS = 10_000
DEFAULT_CONFIG = StepConfig()
DEFAULT_CONFIG_JSON = json.dumps(DEFAULT_CONFIG.to_json())
KINDS = {"do": "do", "sleep": "sleep", "wait": "wait_for_event"}
_SELF_DECODING: frozenset[type] = frozenset({int, str, bool, type(None)})
"""Types whose values come back from their own JSON unchanged (floats do too, but NaN fails)."""


class Suspend(BaseException):
    """Unwinds ``run`` when the instance must wait. Internal: never catch it."""


class Abandon(BaseException):
    """The worker lost the instance (lease taken, terminated, restarted, database gone)."""


class Fatal(BaseException):
    """Ends the instance as errored whatever the workflow catches (non-determinism, limits)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


_PLUMBING = (
    os.path.dirname(os.path.abspath(__file__)),
    os.path.dirname(os.path.abspath(concurrent.futures.__file__)),
    os.path.dirname(os.path.abspath(asyncio.__file__)),
)


def _traceback(exc: BaseException) -> str:
    """The traceback from the user's code inward, without the engine's own frames."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_PLUMBING):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb or exc.__traceback__)).rstrip()


@dataclass
class Outcome:
    status: Status
    output: str | None = None
    error: str | None = None
    wake_at: float | None = None
    wait_types: list[str] = field(default_factory=list)


class Run:
    """One replay of one instance, from claim to suspend or finish."""

    def __init__(
        self,
        claim: Claim,
        workflow: type[WorkflowEntrypoint],
        env: Any,
        store: Store,
        executor: concurrent.futures.Executor,
    ) -> None:
        self.claim = claim
        self.lease = claim.lease
        self.instance = claim.instance
        self.workflow = workflow
        self.env = env
        self.store = store
        self.executor = executor
        self.history: dict[str, StepRow] = {row.key: row for row in claim.steps}
        self.visited: set[str] = set()
        self.counters: dict[str, int] = {}
        self.next_seq = max((row.seq for row in claim.steps), default=0) + 1
        self.do_calls = 0
        self.progress = 0
        self.active_steps = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self.wakes: list[float] = []
        self.wait_types: set[str] = set()
        self.pause_requested = claim.instance.status == Status.WAITING_FOR_PAUSE
        self.finished_after_suspend = False
        self.suspending = False

    # -- the run

    async def execute(self) -> Outcome:
        event = WorkflowEvent(
            payload=self.instance.params,
            timestamp=_utc(self.instance.created_at),
            instance_id=self.instance.id,
            workflow_name=self.instance.workflow,
        )
        entry = self.workflow()
        entry.env = self.env
        try:
            result = await entry.run(event, WorkflowStep(self))
        except Suspend:
            outcome = Outcome(Status.WAITING)
        except Fatal as fatal:
            outcome = self._errored(fatal.error)
        except (Abandon, asyncio.CancelledError):
            raise
        except Exception as exc:
            outcome = self._errored(exc)
        else:
            try:
                outcome = Outcome(
                    Status.COMPLETE, output=dumps(result, what="the workflow's return value")
                )
            except PayloadError as exc:
                outcome = self._errored(exc)
        self.suspending = True
        await self.idle.wait()  # steps still running in parallel branches finish and checkpoint
        if outcome.status == Status.WAITING:
            outcome.wake_at = (
                time.time() if self.finished_after_suspend else min(self.wakes, default=None)
            )
            outcome.wait_types = sorted(self.wait_types)
        return outcome

    @staticmethod
    def _errored(exc: BaseException) -> Outcome:
        info = error_info(exc)
        if isinstance(exc, StepFailedError) and exc.traceback:
            info["traceback"] = exc.traceback
        else:
            info["traceback"] = _traceback(exc)
        return Outcome(Status.ERRORED, error=json.dumps(info))

    def request_pause(self, requested: bool = True) -> None:
        self.pause_requested = requested

    # -- keys, replay and the determinism check

    def _key(self, name: str) -> tuple[str, int]:
        count = self.counters.get(name, 0) + 1
        self.counters[name] = count
        return f"{name}#{count}", count

    def _lookup(self, name: str, kind: str) -> tuple[str, int, StepRow | None]:
        validate.step_name(name)
        key, count = self._key(name)
        self.progress += 1
        row = self.history.get(key)
        if row is not None:
            self.visited.add(key)
            if row.kind != kind:
                raise Fatal(
                    NonDeterminismError(
                        f"step {name!r} (occurrence {count}) was a {KINDS[row.kind]} step when this "
                        f"instance ran, but the code now calls {KINDS[kind]}: the workflow's code "
                        "changed under a running instance. Restore the code or restart the instance."
                    )
                )
        return key, count, row

    async def _check_new_step(self, name: str, kind: str) -> None:
        """A new step may only run once replay has visited every recorded step."""
        if len(self.visited) == len(self.history):
            return
        while True:  # wait until parallel branches stop replaying recorded steps
            seen = self.progress
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            if seen == self.progress:
                break
        missing = [row for key, row in self.history.items() if key not in self.visited]
        if missing:
            first = min(missing, key=lambda row: row.seq)
            raise Fatal(
                NonDeterminismError(
                    f"step {name!r} ({KINDS[kind]}) is not in this instance's history, where "
                    f"{first.name!r} ({KINDS[first.kind]}) comes next: the workflow's code changed "
                    "under a running instance. Restore the code or restart the instance."
                )
            )

    def _suspend(self, wake_at: float | None, wait_type: str | None = None) -> Suspend:
        if wake_at is not None:
            self.wakes.append(wake_at)
        if wait_type is not None:
            self.wait_types.add(wait_type)
        return Suspend()

    async def _save(self, step: StepWrite, *, durable: bool = True) -> None:
        try:
            pending = self.store.save_step(self.lease, step, durable=durable)
            if not durable:
                pending.add_done_callback(_ignore_result)
                return
            status = await pending
        except (LeaseLostError, DatabaseError) as exc:
            raise Abandon(str(exc)) from exc
        self.pause_requested = status == Status.WAITING_FOR_PAUSE

    def _row(self, key: str, name: str, count: int, kind: str, **values: Any) -> StepWrite:
        seq = values.pop("seq", None)
        if seq is None:
            seq = self.next_seq
            self.next_seq += 1
        base: dict[str, Any] = {
            "config": None,
            "attempts": "[]",
            "output": None,
            "error": None,
            "started_at": time.time(),
            "ended_at": None,
            "wake_at": None,
        }
        base.update(values)
        return StepWrite(key=key, name=name, occurrence=count, kind=kind, seq=seq, **base)

    # -- step.do

    async def do(
        self,
        name: str,
        callback: Callable[..., Any],
        retries: RetryPolicy | Mapping[str, Any] | None,
        timeout: Duration | None,
        config: StepConfig | Mapping[str, Any] | None,
    ) -> Any:
        self.do_calls += 1
        if self.do_calls > MAX_STEPS:
            raise Fatal(
                ValidationError(
                    f"the limit of {MAX_STEPS:,} steps per instance was reached at step {name!r}; "
                    "split the work across child workflows"
                )
            )
        key, count, row = self._lookup(name, "do")
        if row is not None:
            if row.status == "success":
                return row.output
            if row.status == "failure":
                err = row.error or {}
                raise StepFailedError(
                    name, err.get("name", "Error"), err.get("message", ""), err.get("traceback")
                )
        if not callable(callback):
            raise ValidationError(
                f"step {name!r}: the callback must be callable, not {type(callback).__name__}"
            )
        if row is None:
            if retries is None and timeout is None and config is None:
                resolved = DEFAULT_CONFIG
            else:
                resolved = resolve_config(name, retries=retries, timeout=timeout, config=config)
            if len(self.visited) != len(self.history):  # saves a coroutine per step otherwise
                await self._check_new_step(name, "do")
            if self.pause_requested:
                raise self._suspend(None)
            attempts: list[dict[str, Any]] = []
            seq = None
            started = time.time()
        else:
            resolved = StepConfig.from_json(row.config) if row.config else resolve_config(name)
            if row.status == "retrying" and row.wake_at is not None and row.wake_at > time.time():
                raise self._suspend(row.wake_at)
            if self.pause_requested:
                raise self._suspend(None)
            attempts = list(row.attempts)
            if attempts and "end" not in attempts[-1]:
                # The worker died during this attempt: it counts, and it ran at least partly.
                attempts[-1] = {
                    **attempts[-1],
                    "end": time.time(),
                    "error": {
                        "name": "WorkerLost",
                        "message": "the worker stopped during this attempt",
                    },
                }
            seq = row.seq
            started = row.started_at or time.time()
        self.active_steps += 1
        self.idle.clear()
        try:
            return await self._attempts(
                key, name, count, callback, resolved, attempts, seq, started
            )
        finally:
            self.active_steps -= 1
            if self.suspending:
                self.finished_after_suspend = True
            if self.active_steps == 0:
                self.idle.set()

    async def _attempts(
        self,
        key: str,
        name: str,
        count: int,
        callback: Callable[..., Any],
        config: StepConfig,
        attempts: list[dict[str, Any]],
        seq: int | None,
        started: float,
    ) -> Any:
        config_json = (
            DEFAULT_CONFIG_JSON if config is DEFAULT_CONFIG else json.dumps(config.to_json())
        )
        if seq is None:
            seq = self.next_seq
            self.next_seq += 1

        def row(
            status: str,
            *,
            output: str | None = None,
            error: str | None = None,
            ended_at: float | None = None,
            wake_at: float | None = None,
        ) -> StepWrite:
            return StepWrite(
                key, name, count, "do", status, seq, config_json, attempts_json(attempts),
                output, error, started, ended_at, wake_at,
            )  # fmt: skip

        loop = asyncio.get_running_loop()
        wants_context = _wants_context(callback)
        is_async = inspect.iscoroutinefunction(callback)
        while True:
            number = len(attempts) + 1
            attempts.append({"attempt": number, "start": time.time()})
            context = (
                (StepContext(name=name, count=count, attempt=number, config=config),)
                if wants_context
                else ()
            )
            timer = AttemptTimer(loop, self._announce, row, config.timeout)
            try:
                try:
                    if is_async:
                        result = await callback(*context)
                    else:
                        result = await self._call(callback, context)
                except asyncio.CancelledError as cancel:
                    if timer.stop(cancelled=True):
                        raise TimeoutError from cancel
                    raise
                except BaseException:
                    timer.stop()
                    raise
                timer.stop()
                output = scalar_json(result) or dumps(result, what=f"the result of step {name!r}")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failure = exc
                if isinstance(exc, TimeoutError) and timer.expired:
                    failure = WorkflowTimeoutError(
                        f"step {name!r} attempt {number} timed out after {config.timeout:g} seconds"
                    )
                info = {**error_info(failure), "traceback": _traceback(exc)}
                attempts[-1].update(end=time.time(), error=info)
                final = (
                    isinstance(exc, NonRetryableError | PayloadError)
                    or number > config.retries.limit
                )
                if final:
                    await self._save(row("failure", error=json.dumps(info), ended_at=time.time()))
                    raise StepFailedError(
                        name, info["name"], info["message"], info["traceback"]
                    ) from None
                wait = config.retries.wait_after(number)
                if wait <= 0:
                    continue
                wake = time.time() + wait
                await self._save(row("retrying", wake_at=wake))
                raise self._suspend(wake) from None
            attempts[-1]["end"] = ended = time.time()
            await self._save(row("success", output=output, ended_at=ended))
            # A plain scalar reads back as itself; anything else goes through JSON, as on replay.
            return result if type(result) in _SELF_DECODING else json.loads(output)

    def _announce(self, row: Callable[..., StepWrite]) -> None:
        with contextlib.suppress(Exception):
            self.store.save_step(self.lease, row("running"), durable=False).add_done_callback(
                _ignore_result
            )

    async def _call(self, callback: Callable[..., Any], args: tuple[StepContext, ...]) -> Any:
        """A sync callback (or one returning an awaitable) runs on the executor, never the loop."""
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self.executor, lambda: callback(*args))
        if inspect.isawaitable(result):
            result = await result
        return result

    # -- step.sleep and step.sleep_until

    async def sleep(self, name: str, duration: Duration) -> None:
        key, count, row = self._lookup(name, "sleep")
        if row is None:
            seconds = to_seconds(duration, what=f"sleep {name!r} duration")
            await self._sleep_new(key, name, count, time.time() + seconds)
            return
        await self._sleep_replay(row)

    async def sleep_until(self, name: str, when: datetime | float | int) -> None:
        key, count, row = self._lookup(name, "sleep")
        if row is not None:
            await self._sleep_replay(row)
            return
        if isinstance(when, datetime):
            if when.tzinfo is None:
                raise ValidationError(
                    f"sleep_until {name!r}: the datetime has no timezone; use an aware datetime "
                    "such as datetime(..., tzinfo=timezone.utc)"
                )
            target = when.timestamp()
        elif isinstance(when, int | float) and not isinstance(when, bool):
            target = float(when)
        else:
            raise ValidationError(
                f"sleep_until {name!r}: expected an aware datetime or epoch seconds, not {type(when).__name__}"
            )
        if target < time.time():
            raise ValidationError(
                f"sleep_until {name!r}: {_utc(target).isoformat()} is in the past; pick a future time"
            )
        await self._sleep_new(key, name, count, target)

    async def _sleep_new(self, key: str, name: str, count: int, wake: float) -> None:
        await self._check_new_step(name, "sleep")
        if wake <= time.time() and not self.pause_requested:
            await self._save(
                self._row(
                    key, name, count, "sleep", status="success", wake_at=wake, ended_at=time.time()
                ),
                durable=False,
            )
            return
        # Joins the commit of the suspend that follows (the writer keeps order).
        await self._save(
            self._row(key, name, count, "sleep", status="sleeping", wake_at=wake), durable=False
        )
        raise self._suspend(wake)

    async def _sleep_replay(self, row: StepRow) -> None:
        if row.status == "success":
            return
        wake = row.wake_at or 0.0
        if wake > time.time() or self.pause_requested:
            raise self._suspend(wake)
        done = self._row(
            row.key,
            row.name,
            row.occurrence,
            "sleep",
            seq=row.seq,
            status="success",
            wake_at=row.wake_at,
            started_at=row.started_at,
            ended_at=time.time(),
        )
        await self._save(done, durable=False)

    # -- step.wait_for_event

    async def wait_for_event(self, name: str, type: str, timeout: Duration) -> StepEvent:
        key, count, row = self._lookup(name, "wait")
        if row is not None:
            if row.status == "success":
                return _step_event(row.output)
            if row.status == "failure":
                err = row.error or {}
                raise WorkflowTimeoutError(err.get("message", "timed out"), name=err.get("name"))
            step = self._row(
                key,
                name,
                count,
                "wait",
                seq=row.seq,
                status="waiting",
                wake_at=row.wake_at,
                started_at=row.started_at,
                config=json.dumps(row.config),
            )
            event_type = (row.config or {}).get("type", type)
        else:
            validate.event_type(type)
            seconds = to_seconds(timeout, what=f"wait_for_event {name!r} timeout")
            if seconds <= 0:
                raise ValidationError(f"wait_for_event {name!r}: timeout must be greater than zero")
            await self._check_new_step(name, "wait")
            config = json.dumps({"type": type, "timeout": seconds})
            step = self._row(
                key,
                name,
                count,
                "wait",
                status="waiting",
                wake_at=time.time() + seconds,
                config=config,
            )
            event_type = type
        if self.pause_requested:
            if row is None:
                await self._save(step, durable=False)
            raise self._suspend(step.wake_at, event_type)
        try:
            event = await self.store.consume_event(self.lease, step, event_type)
        except (LeaseLostError, DatabaseError) as exc:
            raise Abandon(str(exc)) from exc
        if event is not None:
            return StepEvent(
                type=event.type, payload=event.payload, timestamp=_utc(event.received_at)
            )
        wake = step.wake_at or 0.0
        if wake <= time.time():
            error = WorkflowTimeoutError(
                f"waiting for event {event_type!r} in step {name!r} timed out",
                name="WorkflowTimeoutError",
            )
            info = error_info(error)
            await self._save(
                replace(step, status="failure", error=json.dumps(info), ended_at=time.time())
            )
            raise error
        raise self._suspend(wake, event_type)


def _step_event(output: Any) -> StepEvent:
    data = output or {}
    return StepEvent(
        type=data.get("type", ""),
        payload=data.get("payload"),
        timestamp=_utc(data.get("timestamp", 0)),
    )


def _wants_context(callback: Callable[..., Any]) -> bool:
    code = getattr(callback, "__code__", None)
    if code is not None and not getattr(callback, "__defaults__", None):
        return bool(code.co_argcount - (1 if inspect.ismethod(callback) else 0))
    try:
        params = [
            p
            for p in inspect.signature(callback).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        ]
    except (TypeError, ValueError):
        return False
    return len(params) >= 1


def _ignore_result(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
