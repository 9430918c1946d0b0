"""Shared fixtures: a fresh database per test, on every backend."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

BACKENDS = ["sqlite", "postgres"]


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
    """The URL of the test PostgreSQL server (started by scripts/pg-test-cluster)."""
    url = os.environ.get("PERDURE_TEST_PG")
    if not url:
        pytest.fail(
            "PostgreSQL tests need PERDURE_TEST_PG; run them through scripts/test, or start "
            "the server with `eval \"$(scripts/pg-test-cluster env)\"`"
        )
    return url


@pytest.fixture
def postgres_database(postgres_server: str) -> str:
    pytest.fail("the PostgreSQL backend is not wired into the test fixtures yet")
