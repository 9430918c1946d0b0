"""The bookkeeping of one step attempt, kept cheap: it runs on every checkpointed step."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from ..store.base import StepWrite

RUNNING_NOTICE = 0.05
"""Seconds after which a step still running is written down as running."""


class AttemptTimer:
    """One loop timer per attempt: first the "attempt running" notice, then the step's timeout.

    The notice is for observers only (a step that ends quickly never writes it). The timeout
    works as ``asyncio.timeout`` does: it cancels the task, and ``stop`` tells whether the
    cancellation that ended the attempt was its own, to be raised as TimeoutError. This saves a
    second timer and a context manager on every step.
    """

    __slots__ = (
        "_cancelling",
        "_expires_at",
        "_handle",
        "_loop",
        "_notify",
        "_row",
        "_task",
        "expired",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        notify: Callable[[Callable[..., StepWrite]], None],
        row: Callable[..., StepWrite],
        timeout: float,
    ) -> None:
        task = asyncio.current_task(loop)
        assert task is not None, "a step runs inside the instance's task"
        self._loop = loop
        self._task = task
        self._cancelling = task.cancelling()
        self._notify = notify
        self._row = row
        self.expired = False
        now = loop.time()
        self._expires_at = now + timeout
        if timeout <= RUNNING_NOTICE:  # times out before any notice is due
            self._handle: asyncio.TimerHandle | None = loop.call_at(self._expires_at, self._expire)
        else:
            self._handle = loop.call_at(now + RUNNING_NOTICE, self._notice)

    def _notice(self) -> None:
        self._handle = self._loop.call_at(self._expires_at, self._expire)
        self._notify(self._row)

    def _expire(self) -> None:
        self._handle = None
        self.expired = True
        self._task.cancel()

    def stop(self, *, cancelled: bool = False) -> bool:
        """Call once, as the attempt ends: True when its cancellation is this timeout's."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        # As asyncio.timeout: withdraw our cancel request; a cancellation that some other
        # request also asked for (terminate, shutdown) stays a cancellation.
        return self.expired and self._task.uncancel() <= self._cancelling and cancelled


def attempts_json(attempts: list[dict[str, Any]]) -> str:
    """``json.dumps(attempts)``; the usual list, one attempt that ended well, at a third the cost."""
    if len(attempts) == 1:
        only = attempts[0]
        number, start, end = only.get("attempt"), only.get("start"), only.get("end")
        if len(only) == 3 and type(number) is int and type(start) is float and type(end) is float:
            # The same text json.dumps gives: it spells an int and a float as repr() does.
            return f'[{{"attempt": {number!r}, "start": {start!r}, "end": {end!r}}}]'
    return json.dumps(attempts)
