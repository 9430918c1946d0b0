"""Versioned schema migrations, one folder of numbered .sql files per backend."""

from __future__ import annotations

import re
from importlib import resources

from .sql import Tx

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
    applied = []
    for version, name, sql in migrations(dialect_name):
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
