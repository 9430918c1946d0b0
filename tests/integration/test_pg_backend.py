"""The PostgreSQL backend from the operator's side: connecting, migrating, waking, durability."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

import perdure
from perdure import WorkflowEntrypoint, WorkflowEvent, WorkflowStep
from perdure.errors import ConfigError, DatabaseError
from perdure.store.base import NewInstance
from perdure.store.migrate import migrate
from perdure.store.postgres import PostgresStore, redact
from perdure.store.sql import Tx
from tests.integration.pg_support import free_port

pytestmark = pytest.mark.postgres


class Hello(WorkflowEntrypoint):
    async def run(self, event: WorkflowEvent, step: WorkflowStep) -> str:
        return str(await step.do("greet", lambda: f"hello {event.payload['name']}"))


# -- connecting


def test_passwords_never_appear_in_messages() -> None:
    assert redact("postgresql://app:s3cret@db.internal:5433/prod") == (
        "postgresql://app:***@db.internal:5433/prod"
    )
    assert redact("postgresql://app@db/prod?sslmode=require") == (
        "postgresql://app@db/prod?sslmode=require"
    )


async def test_an_unreachable_database_is_reported_with_the_fix() -> None:
    url = f"postgresql://app:s3cret@127.0.0.1:{free_port()}/prod"
    app = perdure.App(database=url, workflows={"hello": Hello})
    started = time.monotonic()
    with pytest.raises(DatabaseError) as caught:
        await app.open()
    message = str(caught.value)
    assert "s3cret" not in message
    assert f"postgresql://app:***@127.0.0.1:{url.split(':')[3]}" in message
    assert "Connection refused" in message and "server is running" in message
    assert "PERDURE_DATABASE" in message
    assert time.monotonic() - started < 10


def test_the_worker_command_says_so_without_a_traceback(tmp_path: Path) -> None:
    url = f"postgresql://app:s3cret@127.0.0.1:{free_port()}/prod"
    (tmp_path / "app.py").write_text(
        "import perdure\n\n"
        "class Hello(perdure.WorkflowEntrypoint):\n"
        "    async def run(self, event, step):\n"
        "        return 1\n"
    )
    (tmp_path / "perdure.toml").write_text(
        'name = "hello"\nmain = "app.py"\n'
        '[[workflows]]\nname = "hello"\nbinding = "HELLO"\nclass_name = "Hello"\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "perdure.cli.main", "--database", url, "worker"],
        cwd=tmp_path,
        env={**os.environ, "PERDURE_DATABASE": url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "Traceback" not in output, output
    assert "cannot connect to PostgreSQL" in output and "s3cret" not in output, output


def test_a_malformed_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="invalid PostgreSQL URL"):
        PostgresStore("postgresql://app@db/prod?nonsense_option=1")


# -- migrating


async def test_many_workers_starting_at_once_migrate_exactly_once(postgres_database: str) -> None:
    stores = [PostgresStore(postgres_database) for _ in range(8)]
    await asyncio.gather(*(store.open() for store in stores))
    await asyncio.gather(*(store.close() for store in stores))
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT version, count(*) FROM perdure_migrations GROUP BY 1"
        ).fetchall()
    assert rows == [(1, 1)]


async def test_db_migrate_applies_what_is_missing_then_nothing(postgres_database: str) -> None:
    assert await migrate(postgres_database) == [1]
    assert await migrate(postgres_database) == []
    async with perdure.App(database=postgres_database, workflows={"hello": Hello}) as app:
        assert [w.name for w in await app.list_workflows()] == ["hello"]


async def test_a_schema_newer_than_this_perdure_is_refused(postgres_database: str) -> None:
    await migrate(postgres_database)
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        conn.execute("INSERT INTO perdure_migrations VALUES (9999, 'from_the_future', 'tomorrow')")
    with pytest.raises(DatabaseError, match=r"newer than this perdure knows.*upgrade perdure"):
        await perdure.App(database=postgres_database).open()


# -- waking


async def test_an_idle_worker_wakes_at_once_for_work_created_elsewhere(
    postgres_database: str,
) -> None:
    """The worker polls only every 30 s: what runs sooner was woken by LISTEN/NOTIFY, also
    after its listening connection was cut (it listens again and catches up)."""
    worker_app = perdure.App(database=postgres_database, workflows={"hello": Hello})
    client = perdure.App(database=postgres_database, workflows={"hello": Hello})
    async with worker_app, client, worker_app.worker(poll_interval=30):
        await asyncio.sleep(0.5)  # the worker is idle and listening
        for name in ("first", "second"):
            started = time.monotonic()
            instance = await client.workflow("hello").create(params={"name": name})
            status = await instance.wait(timeout=10)
            assert status.output == f"hello {name}"
            assert time.monotonic() - started < 3
            with psycopg.connect(postgres_database, autocommit=True) as conn:
                cut = conn.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE query LIKE 'LISTEN %' AND pid <> pg_backend_pid() "
                    "AND application_name = current_setting('application_name')"
                ).fetchone()
            assert cut is not None and cut[0] >= 1
            await asyncio.sleep(0.5)  # it reconnects


# -- durability


@pytest.mark.parametrize(("durability", "setting"), [("full", "on"), ("process", "off")])
def test_durability_sets_synchronous_commit(
    postgres_database: str, durability: str, setting: str
) -> None:
    store = PostgresStore(postgres_database, durability=durability)
    conn = store.dialect.connect_writer()
    try:
        row = conn.conn.execute("SHOW synchronous_commit").fetchone()
        assert row == (setting,)
    finally:
        conn.close()


def test_an_unknown_durability_is_refused() -> None:
    with pytest.raises(ConfigError, match="durability must be one of full, process"):
        PostgresStore("postgresql://app@db/prod", durability="sometimes")


# -- deadlocks


async def test_a_deadlock_between_two_workers_is_retried_not_reported(
    postgres_database: str,
) -> None:
    """Two writers lock the same two instances in opposite orders; the server aborts one
    transaction, and that worker runs its batch again instead of failing its callers."""
    a, b = PostgresStore(postgres_database), PostgresStore(postgres_database)
    await asyncio.gather(a.open(), b.open())
    try:
        await a.register_workflow("w", "tests:W", "W", "v1", None)
        await a.create_instances(
            "w", "v1", [NewInstance("x", "{}"), NewInstance("y", "{}")], skip_existing=False
        )
        x, y = await a.get_instance("w", "x"), await a.get_instance("w", "y")
        assert x is not None and y is not None
        a_holds_x, b_holds_y = threading.Event(), threading.Event()

        def lock(tx: Tx, iid: int) -> None:
            tx.one("SELECT iid FROM instances WHERE iid = ? FOR UPDATE", (iid,))

        def first(tx: Tx) -> str:
            lock(tx, x.iid)
            a_holds_x.set()
            b_holds_y.wait(10)
            lock(tx, y.iid)
            return "a"

        def second(tx: Tx) -> str:
            lock(tx, y.iid)
            b_holds_y.set()
            a_holds_x.wait(10)
            time.sleep(0.1)  # let the other reach its second lock
            lock(tx, x.iid)
            return "b"

        assert await asyncio.gather(a._write(first), b._write(second)) == ["a", "b"]
    finally:
        await asyncio.gather(a.close(), b.close())
