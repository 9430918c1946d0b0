"""The hot queries walk their indexes on SQLite, which keeps no statistics to plan with."""

from __future__ import annotations

import sqlite3

import pytest

from perdure.store import migrate
from perdure.store.dialect import Tx
from perdure.store.sqlite import SqliteDialect, SqliteStore


@pytest.fixture
def conn(tmp_path: object) -> sqlite3.Connection:
    c = sqlite3.connect(":memory:", isolation_level=None)
    migrate.apply(Tx(c, SqliteDialect(":memory:", "full")), "sqlite")
    return c


def plan(conn: sqlite3.Connection, sql: str, params: tuple[object, ...]) -> str:
    return " | ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params))


def test_claiming_due_instances_walks_the_timer_index(conn: sqlite3.Connection) -> None:
    store = SqliteStore(":memory:")
    sql = store._claim_sql(2, expired=False)
    text = plan(conn, sql, ("w", 1.0, 0.0, 0.0, 0.0, "a", "b", 10))
    assert "USING INDEX instances_due" in text, text


def test_taking_over_expired_leases_walks_the_lease_index(conn: sqlite3.Connection) -> None:
    store = SqliteStore(":memory:")
    sql = store._claim_sql(1, expired=True)
    text = plan(conn, sql, ("w", 1.0, 0.0, 0.0, 0.0, "a", 10))
    assert "USING INDEX instances_leased" in text, text
    assert "SCAN instances" not in text.replace("SCAN instances USING INDEX", ""), text
