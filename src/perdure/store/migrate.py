"""Versioned schema migrations, one folder of numbered .sql files per backend."""

from __future__ import annotations

import asyncio
import re
from importlib import resources

from ..errors import DatabaseError
from .dialect import Dialect, Tx

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


def migrations(dialect_name: str) -> list[tuple[int, str, str]]:
    """(version, name, sql) for every migration file of a backend, in order."""
    folder = resources.files("perdure.store") / "migrations" / dialect_name
    found = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text()))
    return sorted(found)


def statements(sql: str) -> list[str]:
    """Split a migration into statements (our migrations hold no semicolons inside statements)."""
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]


def apply(tx: Tx, dialect_name: str) -> list[int]:
    """Apply the migrations not yet applied, inside the caller's transaction."""
    tx.execute(
        "CREATE TABLE IF NOT EXISTS perdure_migrations (version INTEGER PRIMARY KEY, "
        "name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    done = {row[0] for row in tx.all("SELECT version FROM perdure_migrations")}
    known = migrations(dialect_name)
    newest = max((version for version, _, _ in known), default=0)
    if done and max(done) > newest:
        # Migrating down is never safe to guess; an older perdure must not run on this schema.
        raise DatabaseError(
            f"the database schema is at version {max(done)}, newer than this perdure knows "
            f"({newest}); upgrade perdure on this machine to the version the others run"
        )
    applied = []
    for version, name, sql in known:
        if version in done:
            continue
        for statement in statements(sql):
            tx.execute(statement)
        tx.execute(
            "INSERT INTO perdure_migrations (version, name, applied_at) VALUES (?, ?, "
            "CURRENT_TIMESTAMP)",
            (version, name),
        )
        applied.append(version)
    return applied


def pending(tx: Tx, dialect_name: str) -> list[int]:
    tx.execute(
        "CREATE TABLE IF NOT EXISTS perdure_migrations (version INTEGER PRIMARY KEY, "
        "name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    done = {row[0] for row in tx.all("SELECT version FROM perdure_migrations")}
    return [version for version, _, _ in migrations(dialect_name) if version not in done]


def run(dialect: Dialect) -> list[int]:
    """Apply pending migrations on a connection of their own (``perdure db migrate``)."""
    conn = dialect.connect_writer()
    try:
        tx = Tx(conn, dialect)
        tx.execute(dialect.begin)
        try:
            applied = dialect.migrate(tx) or []
        except BaseException:
            tx.execute("ROLLBACK")
            raise
        tx.execute("COMMIT")
        return applied
    finally:
        conn.close()


async def migrate(url: str) -> list[int]:
    """Bring the database at ``url`` to the current schema; returns the versions applied
    (empty when it was up to date). Safe while workers run and from many machines at once.
    Raises DatabaseError (saying what to do) when the database is unreachable or newer."""
    from . import open_store
    from .sql import SqlStore

    store = open_store(url)
    assert isinstance(store, SqlStore)
    return await asyncio.to_thread(run, store.dialect)
