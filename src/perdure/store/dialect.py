"""What differs between databases, and a connection that speaks the dialect's placeholders."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Row = Sequence[Any]


class Tx:
    """A connection inside the writer's transaction (or a reader), with the dialect's placeholders."""

    def __init__(self, conn: Any, dialect: Dialect) -> None:
        self.conn = conn
        self.dialect = dialect

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        if self.dialect.placeholder != "?":
            sql = self.dialect.sql(sql)
        return self.conn.execute(sql, params if type(params) is tuple else tuple(params))

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return list(self.execute(sql, params).fetchall())

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row: Row | None = self.execute(sql, params).fetchone()
        return row


class Dialect:
    """What differs between databases. Subclassed by each backend module."""

    placeholder = "?"
    inline_writes = False
    """May a write run in the caller's thread when nothing else is queued (cheap commits)?"""
    begin = "BEGIN IMMEDIATE"
    for_update = ""
    skip_locked = ""
    transient_errors: tuple[type[BaseException], ...] = ()
    reconnect_errors: tuple[type[BaseException], ...] = ()
    """Errors of a connection that broke while idle (the server restarted): reconnect once."""
    retry_errors: tuple[type[BaseException], ...] = ()
    """Errors after which the server undid the whole transaction (a deadlock): run it again."""

    def sql(self, text: str) -> str:
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)

    def connect_writer(self) -> Any:
        raise NotImplementedError

    def connect_reader(self) -> Any:
        raise NotImplementedError

    def instr(self, haystack: str, needle: str) -> str:
        return f"instr({haystack}, {needle})"

    def migrate(self, tx: Tx) -> list[int] | None:
        raise NotImplementedError

    def notify(self, tx: Tx) -> None:
        """Tell idle workers elsewhere that work is runnable, when this transaction commits.

        A hint only (workers poll anyway); a no-op where the database cannot notify."""
