"""Shared fixtures: a fresh database per test, on every backend."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

BACKENDS = ["sqlite", "postgres"]
ROOT = Path(__file__).resolve().parents[1]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        action="append",
        choices=BACKENDS,
        help="run behaviour tests only on this backend (repeatable); default: all",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("--backend") or BACKENDS
        metafunc.parametrize("backend", chosen)


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A URL of an empty database on ``backend``."""
    if backend == "sqlite":
        yield str(tmp_path / "perdure.db")
        return
    pg = request.getfixturevalue("postgres_database")
    yield pg


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return str(tmp_path / "perdure.db")


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The URL of the test PostgreSQL server: PERDURE_TEST_PG, or the cluster that
    scripts/pg-test-cluster starts (and leaves running for the next run)."""
    url = os.environ.get("PERDURE_TEST_PG")
    if url:
        return url
    script = ROOT / "scripts" / "pg-test-cluster"
    try:
        done = subprocess.run(
            [str(script), "start"], capture_output=True, text=True, timeout=300, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"could not run {script} start: {exc}; set PERDURE_TEST_PG to a server URL")
    lines = done.stdout.split()
    if done.returncode != 0 or not lines:
        pytest.fail(
            f"{script} start failed (exit {done.returncode}):\n{done.stderr[-2000:]}\n"
            "set PERDURE_TEST_PG to a server URL, or fix the cluster"
        )
    return lines[-1]


def with_schema(url: str, schema: str) -> str:
    """``url`` with every connection's search_path set to ``schema`` (and named after it)."""
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}&application_name={schema}"


@pytest.fixture
def postgres_database(postgres_server: str) -> Iterator[str]:
    """A URL of an empty schema of its own on the test server, dropped afterwards."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_server, autocommit=True, connect_timeout=10) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    yield with_schema(postgres_server, schema)
    with psycopg.connect(postgres_server, autocommit=True, connect_timeout=10) as admin:
        # Connections a test left open (a killed worker's, say) must not keep the drop waiting.
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE pid <> pg_backend_pid() AND application_name = %s",
            (schema,),
        )
        admin.execute("SET lock_timeout = '10s'")
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
