"""Helpers for scenario tests: an App on a fresh database, and a running worker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

import perdure
from perdure import App


@pytest.fixture
async def make_app(database_url: str) -> AsyncIterator[Callable[..., App]]:
    apps: list[App] = []

    def make(**workflows: type[perdure.WorkflowEntrypoint]) -> App:
        app = App(database=database_url, workflows=workflows)
        apps.append(app)
        return app

    yield make
    for app in apps:
        await app.close()


FAST = {"poll_interval": 0.05, "lease_seconds": 5.0}


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:
    """Poll ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last value {value!r})")
        await asyncio.sleep(0.02)


async def status_is(instance: perdure.Instance, *statuses: str, timeout: float = 10.0) -> str:
    async def check() -> str | None:
        current = (await instance.status()).status
        return current if current in statuses else None

    result: str = await until(check, timeout)
    return result
