"""perdure over HTTP: a JSON API shaped like Cloudflare's, and a dashboard to watch workflows.

``create_app(app)`` builds the ASGI app; ``serve(app)`` runs it on uvicorn at 127.0.0.1:8787.
"""

from __future__ import annotations

from .app import DEFAULT_MAX_BODY, create_app
from .server import DEFAULT_HOST, DEFAULT_PORT, check_bind, serve, serve_async

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_MAX_BODY",
    "DEFAULT_PORT",
    "check_bind",
    "create_app",
    "serve",
    "serve_async",
]
