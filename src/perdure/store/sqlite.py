"""The embedded default: one SQLite file in WAL mode, written through one thread per process."""

from __future__ import annotations

import os
import sqlite3
from typing import Any

from ..errors import ConfigError, DatabaseError
from . import migrate
from .dialect import Dialect, Tx
from .sql import SqlStore

DURABILITY_MODES = {"full": "FULL", "process": "NORMAL"}
"""full survives power loss (fsync on every commit); process survives only process crashes."""


def sqlite_path(url: str) -> str:
    for prefix in ("sqlite:///", "sqlite://"):
        if url.startswith(prefix):
            return url[len(prefix) :]
    return url


class SqliteDialect(Dialect):
    transient_errors = (sqlite3.OperationalError,)
    inline_writes = True

    def __init__(self, path: str, durability: str) -> None:
        if durability not in DURABILITY_MODES:
            raise ConfigError(
                f"durability must be one of {', '.join(DURABILITY_MODES)}, got {durability!r}"
            )
        self.path = path
        self.synchronous = DURABILITY_MODES[durability]

    def _connect(self) -> sqlite3.Connection:
        parent = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(parent):
            raise DatabaseError(
                f"cannot open database {self.path!r}: folder {parent!r} does not exist; create it "
                "or point the database setting elsewhere"
            )
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 10000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(f"cannot open database {self.path!r}: {exc}") from exc
        return conn

    def connect_writer(self) -> Any:
        return self._connect()

    def connect_reader(self) -> Any:
        conn = self._connect()
        conn.execute("PRAGMA query_only = 1")
        return conn

    def migrate(self, tx: Tx) -> list[int]:
        return migrate.apply(tx, "sqlite")


class SqliteStore(SqlStore):
    def __init__(self, url: str, *, durability: str = "full") -> None:
        path = sqlite_path(url)
        super().__init__(url, SqliteDialect(path, durability))
        self.path = path
