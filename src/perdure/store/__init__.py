"""Storage: one small interface, one module per backend."""

from __future__ import annotations

from .base import (
    Claim,
    EventRow,
    InstanceRow,
    Lease,
    NewInstance,
    StepRow,
    StepWrite,
    Store,
    WorkflowRow,
)

__all__ = [
    "Claim",
    "EventRow",
    "InstanceRow",
    "Lease",
    "NewInstance",
    "StepRow",
    "StepWrite",
    "Store",
    "WorkflowRow",
    "open_store",
]


def open_store(url: str, *, durability: str = "full") -> Store:
    """A store for ``url``: a SQLite path (or ``sqlite:///path``) or ``postgresql://...``."""
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore

        store: Store = PostgresStore(url, durability=durability)
        return store
    from .sqlite import SqliteStore

    return SqliteStore(url, durability=durability)
