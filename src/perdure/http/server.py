"""``serve``: run the API and dashboard on uvicorn, on loopback unless a token is set."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import signal
import socket
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from ..client.aio import App
from ..errors import ConfigError
from .app import DEFAULT_MAX_BODY, create_app
from .security import is_loopback

log = logging.getLogger("perdure.http")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGINT/SIGTERM once it has shut down, which would kill the process
    before the worker hands back its leases and the App closes. Here a signal only stops
    serving; ``serve`` then finishes its cleanup and returns."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond this machine without a token: the API can steer every workflow."""
    if not isinstance(host, str) or not host.strip():
        raise ConfigError("host must be an address such as 127.0.0.1")
    if token is None and not is_loopback(host):
        raise ConfigError(
            f"refusing to serve on {host} without a token: anyone who can reach that address "
            "could read and control every workflow. Set PERDURE_TOKEN (or pass a token), or "
            "bind 127.0.0.1"
        )


def _port(port: int) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"port must be an integer between 0 and 65535, got {port!r}")
    return port


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket; ``port=0`` picks a free one (read it with ``getsockname()``)."""
    try:
        family = (
            socket.AF_INET6
            if ipaddress.ip_address(host.strip("[]")).version == 6
            else socket.AF_INET
        )
    except ValueError:
        family = socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port}: {exc.strerror}; pick another port with --port"
        ) from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


async def serve_async(
    app: App,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    token: str | None = None,
    prefix: str = "",
    user_app: ASGIApp | None = None,
    worker: bool = False,
    worker_options: Mapping[str, Any] | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    sock: socket.socket | None = None,
    log_level: str = "info",
    started: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until ``stop`` is set (or SIGINT/SIGTERM); with ``worker=True`` run a worker too.

    Unlike ``serve``, this does not read ``PERDURE_TOKEN``: the caller passes the token."""
    check_bind(host, token)
    asgi = create_app(app, token=token, prefix=prefix, user_app=user_app, max_body=max_body)
    if sock is None:
        sock = bind_socket(host, _port(port))
    config = uvicorn.Config(
        asgi,
        log_level=log_level,
        access_log=log_level == "debug",
        lifespan="on",
        proxy_headers=False,
        server_header=False,
    )
    server = _Server(config)
    if not is_loopback(host):
        log.warning("serving on %s: reachable from other machines; keep the token secret", host)
    listener = _tcp_listener(sock)
    async with _maybe_worker(app, worker, worker_options):
        serving = asyncio.create_task(server.serve(sockets=[listener]))
        watcher = asyncio.create_task(_signal_started(server, started))
        try:
            if stop is None:
                await serving
            else:
                stopping = asyncio.create_task(stop.wait())
                await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
                server.should_exit = True
                await serving
                stopping.cancel()
        finally:
            watcher.cancel()
            if listener is not sock:
                listener.close()
            sock.close()


def _tcp_listener(sock: socket.socket) -> socket.socket:
    """The socket as asyncio needs it to turn Nagle off on each connection.

    asyncio sets TCP_NODELAY only on sockets whose ``proto`` is IPPROTO_TCP, and a socket made
    with ``socket.socket(AF_INET, SOCK_STREAM)`` says 0. Without it every keep-alive response
    waits ~40 ms for the client's delayed ACK. A socket rebuilt from a duplicate of the file
    descriptor reads the real protocol back from the kernel.
    """
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.proto == socket.IPPROTO_TCP:
        return sock
    listener = socket.socket(fileno=os.dup(sock.fileno()))
    listener.setblocking(False)
    return listener


async def _signal_started(server: uvicorn.Server, started: asyncio.Event | None) -> None:
    if started is None:
        return
    while not server.started:
        await asyncio.sleep(0.01)
    started.set()


@contextlib.asynccontextmanager
async def _maybe_worker(
    app: App, worker: bool, options: Mapping[str, Any] | None
) -> AsyncIterator[None]:
    if not worker:
        yield
        return
    async with app.worker(**dict(options or {})):
        yield


def serve(
    app: App,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    token: str | None = None,
    prefix: str = "",
    user_app: ASGIApp | None = None,
    worker: bool = False,
    worker_options: Mapping[str, Any] | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    log_level: str = "info",
) -> None:
    """Run the server until Ctrl-C; closes the App afterwards.

    Binds 127.0.0.1 by default. Any other address needs a token (the argument or
    ``PERDURE_TOKEN``); without one this raises ``ConfigError`` before listening.
    """
    if token is None:
        token = os.environ.get("PERDURE_TOKEN") or None
    check_bind(host, token)
    sock = bind_socket(host, _port(port))

    async def main() -> None:
        try:
            await serve_async(
                app,
                host=host,
                token=token,
                prefix=prefix,
                user_app=user_app,
                worker=worker,
                worker_options=worker_options,
                max_body=max_body,
                sock=sock,
                log_level=log_level,
            )
        finally:
            await app.close()

    asyncio.run(main())
