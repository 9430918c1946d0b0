"""``create_app``: the API, the dashboard and optionally the user's own ASGI app, in one app.

perdure owns ``{prefix}/`` (the dashboard), ``{prefix}/api/...`` and ``{prefix}/_perdure/...``
(with a non-empty prefix, everything under it). Every other path goes to ``user_app``, so a
project's own handler keeps working beside the dashboard in ``perdure dev``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Collection
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..client.aio import App
from ..errors import ConfigError, PerdureError
from . import api, dashboard
from .api import HttpError, error_response
from .security import Guard, Security

log = logging.getLogger("perdure.http")

DEFAULT_MAX_BODY = 1024 * 1024 + 64 * 1024
"""1 MiB for a payload plus room for the JSON around it."""


def _normalize_prefix(prefix: str) -> str:
    if not isinstance(prefix, str):
        raise ConfigError(f"prefix must be a string like '/perdure', not {type(prefix).__name__}")
    prefix = prefix.rstrip("/")
    if prefix and (not prefix.startswith("/") or "//" in prefix or any(c in prefix for c in "?#")):
        raise ConfigError(f"prefix must be a path like '/perdure', got {prefix!r}")
    return prefix


def _below_root(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


class _OwnPaths(BaseRoute):
    """Routes perdure's paths to the inner app, with the prefix moved into ``root_path``."""

    def __init__(self, prefix: str, app: ASGIApp) -> None:
        self.prefix = prefix
        self.app = app

    def _owned(self, path: str) -> bool:
        if self.prefix:
            return path == self.prefix or path.startswith(self.prefix + "/")
        return (
            path == "/"
            or path == "/api"
            or path.startswith("/api/")
            or path.startswith("/_perdure/")
        )

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        if not self._owned(_below_root(scope)):
            return Match.NONE, {}
        root = scope.get("root_path", "")
        return Match.FULL, {
            "app_root_path": scope.get("app_root_path", root),
            "root_path": root + self.prefix,
        }

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if _below_root(scope) == "":
            # "/perdure" -> "/perdure/", so relative URLs in the dashboard resolve.
            target = scope.get("root_path", "") + "/"
            await RedirectResponse(target, status_code=307)(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _handle_error(request: Request, exc: Exception) -> Response:
    return error_response(exc)


def _inner_app(app: App, security: Security) -> Starlette:
    inner = Starlette(
        routes=[*api.ROUTES, *dashboard.ROUTES],
        exception_handlers={
            HttpError: _handle_error,
            PerdureError: _handle_error,
            HTTPException: _handle_error,
            Exception: _handle_error,
        },
    )
    inner.state.perdure = app
    inner.state.security = security
    inner.state.max_body = security.max_body
    return inner


def create_app(
    app: App,
    *,
    token: str | None = None,
    prefix: str = "",
    user_app: ASGIApp | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    allowed_hosts: Collection[str] | None = None,
) -> Starlette:
    """The ASGI app serving perdure's JSON API, the dashboard and, for other paths, ``user_app``.

    ``token`` turns on auth: the API wants ``Authorization: Bearer <token>`` and the dashboard
    shows a login form. Without a token only loopback host names are answered (so a DNS
    rebinding page cannot reach it); ``allowed_hosts`` overrides that list.
    """
    if not isinstance(app, App):
        raise ConfigError(f"create_app needs a perdure.App, not {type(app).__name__}")
    if isinstance(max_body, bool) or not isinstance(max_body, int) or max_body < 1024:
        raise ConfigError("max_body must be a number of bytes, at least 1024")
    if token is not None and not isinstance(token, str):
        raise ConfigError("token must be a string (or None for no auth)")
    prefix = _normalize_prefix(prefix)
    security = Security.build(token=token, max_body=max_body, allowed_hosts=allowed_hosts)
    inner = Guard(_inner_app(app, security), security)
    routes: list[BaseRoute] = [_OwnPaths(prefix, inner)]
    if user_app is not None:
        routes.append(Mount("", app=user_app))

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await app.open()
        async with _user_lifespan(user_app):
            yield

    return Starlette(routes=routes, lifespan=lifespan)


@contextlib.asynccontextmanager
async def _user_lifespan(user_app: ASGIApp | None) -> AsyncIterator[None]:
    """Run the user app's ASGI lifespan, which Starlette does not do for mounted apps."""
    if user_app is None:
        yield
        return
    to_app: asyncio.Queue[Message] = asyncio.Queue()
    from_app: asyncio.Queue[Message] = asyncio.Queue()
    scope: dict[str, Any] = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}

    async def receive() -> Message:
        return await to_app.get()

    async def send(message: Message) -> None:
        await from_app.put(message)

    async def run() -> None:
        try:
            await user_app(scope, receive, send)
        except BaseException as exc:  # an app without lifespan support raises here
            await from_app.put({"type": "perdure.unsupported", "error": exc})

    task = asyncio.create_task(run())
    await to_app.put({"type": "lifespan.startup"})
    reply = await from_app.get()
    if reply["type"] == "lifespan.startup.failed":
        task.cancel()
        raise RuntimeError(f"the user app failed to start: {reply.get('message', '')}")
    supported = reply["type"] == "lifespan.startup.complete"
    if not supported:
        log.debug("user app has no lifespan support: %r", reply.get("error"))
    try:
        yield
    finally:
        if supported:
            await to_app.put({"type": "lifespan.shutdown"})
            await from_app.get()
        if not task.done():
            task.cancel()
        with contextlib.suppress(BaseException):
            await task
