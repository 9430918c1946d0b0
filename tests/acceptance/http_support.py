"""A real perdure server for HTTP and browser tests: uvicorn on a free loopback port, in a
thread with its own event loop, with a worker running the workflows below."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

import perdure
from perdure import App, NonRetryableError
from perdure.http import serve_async
from perdure.http.server import bind_socket

TOKEN = "test-token-0123456789abcdef"
FAST_WORKER = {"poll_interval": 0.05, "lease_seconds": 5.0}
XSS = "<script>alert(1)</script>"
XSS_IMG = "<img src=x onerror=alert(2)>"
PAYLOADS = [
    "<svg onload=alert(3)>",
    "<svg><script>alert(4)</script></svg>",
    "<iframe src=javascript:alert(5)></iframe>",
    "javascript:alert(6)",
    '"><script>alert(7)</script>',
    "'><img src=x onerror=alert(8)>",
    '<a href="javascript:alert(9)">click</a>',
    "{{7*7}} ${7*7} #{7*7}",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(10)>",
    "<details open ontoggle=alert(11)>",
    "</pre><script>alert(12)</script>",
    "<body onload=alert(13)>",
    "<input autofocus onfocus=alert(14)>",
    "<object data=javascript:alert(15)>",
]
"""Markup that would run if the dashboard ever parsed stored data as HTML."""

_flaky_calls: dict[str, int] = {}


class Greeter(perdure.WorkflowEntrypoint):
    """One quick step; completes at once."""

    async def run(self, event: perdure.WorkflowEvent, step: perdure.WorkflowStep) -> Any:
        params = event.payload or {}

        async def greet() -> dict[str, str]:
            return {"greeting": f"hello {params.get('name', 'world')}"}

        return await step.do("greet", greet)


class Approval(perdure.WorkflowEntrypoint):
    """A step, then a wait for an ``approve`` event; returns the event's payload."""

    async def run(self, event: perdure.WorkflowEvent, step: perdure.WorkflowStep) -> Any:
        async def prepare() -> str:
            return "prepared"

        await step.do("prepare", prepare)
        approval = await step.wait_for_event("approval", type="approve", timeout="1 hour")
        return {"approved": approval.payload}


class Napper(perdure.WorkflowEntrypoint):
    """A long sleep between two steps: something to pause and resume."""

    async def run(self, event: perdure.WorkflowEvent, step: perdure.WorkflowStep) -> Any:
        async def before() -> int:
            return 1

        async def after() -> int:
            return 2

        await step.do("before", before)
        await step.sleep("nap", (event.payload or {}).get("nap", "1 hour"))
        return await step.do("after", after)


class Flaky(perdure.WorkflowEntrypoint):
    """Fails its first attempt, then succeeds: a step with two attempts."""

    async def run(self, event: perdure.WorkflowEvent, step: perdure.WorkflowStep) -> Any:
        async def wobble() -> str:
            calls = _flaky_calls.get(event.instance_id, 0) + 1
            _flaky_calls[event.instance_id] = calls
            if calls == 1:
                raise ConnectionError("first attempt fails")
            return "steady"

        return await step.do(
            "wobble", wobble, retries={"limit": 3, "delay": "200 ms", "backoff": "constant"}
        )


class Broken(perdure.WorkflowEntrypoint):
    """Always fails for good: an errored instance with a traceback."""

    async def run(self, event: perdure.WorkflowEvent, step: perdure.WorkflowStep) -> Any:
        async def explode() -> None:
            raise NonRetryableError(f"cannot continue {XSS}", "ValueError")

        return await step.do("explode", explode)


class Hostile(perdure.WorkflowEntrypoint):
    """Stores markup everywhere the dashboard shows data: step names, outputs, errors, events."""

    async def run(self, event: perdure.WorkflowEvent, step: perdure.WorkflowStep) -> Any:
        async def markup() -> dict[str, str]:
            return {"html": XSS, "img": XSS_IMG}

        await step.do(XSS_IMG, markup)
        await step.do(XSS, markup)
        for payload in PAYLOADS:

            async def echo(text: str = payload) -> str:
                return text

            await step.do(payload, echo)
        got = await step.wait_for_event(f"wait {XSS}", type="poke", timeout="1 hour")
        return {"output": XSS, "event": got.payload, "corpus": PAYLOADS}


WORKFLOWS: dict[str, type[perdure.WorkflowEntrypoint]] = {
    "greeter": Greeter,
    "approval": Approval,
    "napper": Napper,
    "flaky": Flaky,
    "broken": Broken,
    "hostile": Hostile,
}


@dataclass
class Server:
    """A running server: ``url`` is its base URL, prefix included."""

    url: str
    port: int
    token: str | None

    def client(self, *, auth: bool = True, **kwargs: Any) -> httpx.Client:
        headers = dict(kwargs.pop("headers", {}))
        if auth and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return httpx.Client(base_url=self.url, headers=headers, timeout=10.0, **kwargs)


@contextlib.contextmanager
def running_server(
    database: str,
    *,
    token: str | None = None,
    prefix: str = "",
    user_app: Any = None,
    worker: bool = True,
    workflows: dict[str, type[perdure.WorkflowEntrypoint]] | None = None,
    sock: socket.socket | None = None,
    **options: Any,
) -> Iterator[Server]:
    app = App(database=database, workflows=workflows or WORKFLOWS)
    sock = sock or bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    ready = threading.Event()
    control: dict[str, Any] = {}

    async def main() -> None:
        stop = asyncio.Event()
        started = asyncio.Event()
        control["loop"] = asyncio.get_running_loop()
        control["stop"] = stop
        task = asyncio.create_task(
            serve_async(
                app,
                host="127.0.0.1",
                token=token,
                prefix=prefix,
                user_app=user_app,
                worker=worker,
                worker_options=FAST_WORKER,
                sock=sock,
                log_level="warning",
                started=started,
                stop=stop,
                **options,
            )
        )
        waiter = asyncio.create_task(started.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        ready.set()
        try:
            await task
        finally:
            waiter.cancel()
            await app.close()

    def thread_main() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:
            control["error"] = exc
            ready.set()

    thread = threading.Thread(target=thread_main, name=f"perdure-http-{port}", daemon=True)
    thread.start()
    if not ready.wait(15) or "error" in control:
        raise RuntimeError(f"the server did not start: {control.get('error')!r}")
    try:
        yield Server(f"http://127.0.0.1:{port}{prefix}", port, token)
    finally:
        control["loop"].call_soon_threadsafe(control["stop"].set)
        thread.join(15)
        if "error" in control:
            raise control["error"]


@contextlib.contextmanager
def serving_asgi(asgi: Any, *, lifespan: str = "on") -> Iterator[int]:
    """Any ASGI app on uvicorn in a thread, on a free loopback port (yielded)."""
    import uvicorn

    sock = bind_socket("127.0.0.1", 0)
    port: int = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(asgi, log_level="critical", lifespan=lifespan))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])))
    thread.start()
    try:
        import time

        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        yield port
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def wait_for_status(
    client: httpx.Client, workflow: str, instance: str, *statuses: str, timeout: float = 10.0
) -> dict[str, Any]:
    """Poll the API until the instance reaches one of ``statuses``; return its details."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/api/workflows/{workflow}/instances/{instance}")
        response.raise_for_status()
        details: dict[str, Any] = response.json()["result"]
        if details["status"] in statuses:
            return details
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{workflow}/{instance} is {details['status']}, not {statuses} after {timeout} s"
            )
        time.sleep(0.05)
