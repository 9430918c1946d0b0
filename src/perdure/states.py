"""The instance state machine, written down once and used by every backend.

Client actions (``pause``, ``resume``, ``terminate``, ``restart``) map a current status to the
next one. Worker moves (claim, suspend, finish) are listed for the record and enforced by the
store's guarded statements.

    queued ──claim──► running ──suspend──► waiting ──due / event──► (claim) running
      │                 │  └──finish──► complete | errored
      │                 └──pause──► waitingForPause ──steps done──► paused
      └──pause──► paused ◄──pause── waiting
    paused ──resume──► queued | waiting (timers shifted by the paused time)
    any non-terminal ──terminate──► terminated
    any ──restart──► queued (history erased, same id and params)
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    ERRORED = "errored"
    TERMINATED = "terminated"
    COMPLETE = "complete"
    WAITING = "waiting"
    WAITING_FOR_PAUSE = "waitingForPause"
    UNKNOWN = "unknown"


TERMINAL = frozenset({Status.COMPLETE, Status.ERRORED, Status.TERMINATED})
ACTIVE = frozenset({Status.RUNNING, Status.WAITING_FOR_PAUSE})
"""Statuses in which a worker holds the lease and may write."""

ACTIONS = ("pause", "resume", "terminate", "restart")

# action -> {from status: to status}. A status missing from the map refuses the action;
# a status that maps to itself is a no-op (pause twice, resume a running instance).
TRANSITIONS: dict[str, dict[Status, Status]] = {
    "pause": {
        Status.QUEUED: Status.PAUSED,
        Status.WAITING: Status.PAUSED,
        Status.RUNNING: Status.WAITING_FOR_PAUSE,
        Status.WAITING_FOR_PAUSE: Status.WAITING_FOR_PAUSE,
        Status.PAUSED: Status.PAUSED,
    },
    "resume": {
        Status.PAUSED: Status.QUEUED,  # or WAITING when a timer is pending
        Status.WAITING_FOR_PAUSE: Status.RUNNING,
        Status.QUEUED: Status.QUEUED,
        Status.RUNNING: Status.RUNNING,
        Status.WAITING: Status.WAITING,
    },
    "terminate": {s: Status.TERMINATED for s in Status if s not in TERMINAL},
    "restart": {s: Status.QUEUED for s in Status},
}


_BY_VALUE: dict[str, Status] = {status.value: status for status in Status}


def parse_status(value: str) -> Status:
    """The status stored as ``value``; UNKNOWN for one this version does not know."""
    return _BY_VALUE.get(value, Status.UNKNOWN)


def next_status(action: str, current: Status) -> Status | None:
    """The status ``action`` leads to from ``current``, or None when it is refused."""
    return TRANSITIONS[action].get(current)
