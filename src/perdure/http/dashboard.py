"""The dashboard: one HTML shell, static JavaScript that reads the JSON API, and a login form.

The server never puts workflow data into HTML. The shell carries only the mount point and the
session's CSRF token (both escaped); the scripts fetch everything else and insert it with
``textContent``, under a CSP that allows no inline script.
"""

from __future__ import annotations

import html
from importlib import resources
from string import Template
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from .api import HttpError, read_body
from .security import SESSION_COOKIE, Security, safe_next, session_cookie_header

LOGIN_BODY_LIMIT = 4096
_PACKAGE = resources.files("perdure.http")


def _template(name: str) -> Template:
    return Template(_PACKAGE.joinpath("templates", name).read_text(encoding="utf-8"))


def _security(request: Request) -> Security:
    security: Security = request.app.state.security
    return security


def _base(request: Request) -> str:
    root: str = request.scope.get("root_path", "")
    return root


async def index(request: Request) -> Response:
    security = _security(request)
    nonce = request.scope.get("perdure.session")
    csrf = security.csrf_token(nonce) if nonce else ""
    page = _template("index.html").substitute(
        base=html.escape(_base(request)),
        csrf=html.escape(csrf),
        auth="session" if security.enabled else "none",
    )
    return HTMLResponse(page)


def _login_page(
    request: Request, *, next_path: str, error: str = "", status: int = 200
) -> Response:
    page = _template("login.html").substitute(
        base=html.escape(_base(request)),
        next=html.escape(next_path),
        error=html.escape(error),
        error_hidden="" if error else "hidden",
    )
    return HTMLResponse(page, status_code=status)


async def login_form(request: Request) -> Response:
    if not _security(request).enabled:
        return RedirectResponse(f"{_base(request)}/", status_code=303)
    return _login_page(request, next_path=safe_next(request.query_params.get("next")))


async def login(request: Request) -> Response:
    security = _security(request)
    if not security.enabled:
        return RedirectResponse(f"{_base(request)}/", status_code=303)
    try:
        raw = await read_body(request, LOGIN_BODY_LIMIT)
    except HttpError:
        return _login_page(request, next_path="/", error="The form is too large.", status=413)
    fields = parse_qs(raw.decode("utf-8", "replace"), max_num_fields=10)
    next_path = safe_next((fields.get("next") or ["/"])[0])
    token = (fields.get("token") or [""])[0]
    if not security.check_token(token):
        return _login_page(
            request, next_path=next_path, error="That token is not right.", status=401
        )
    response = RedirectResponse(f"{_base(request)}{next_path}", status_code=303)
    response.set_cookie(
        **session_cookie_header(
            security.new_session(),
            path=f"{_base(request)}/",
            secure=request.url.scheme == "https",
            max_age=security.session_ttl,
        )
    )
    return response


async def logout(request: Request) -> Response:
    """Needs the session's CSRF header like every other state change (see security.Guard)."""
    response = Response(status_code=204)
    response.delete_cookie(
        SESSION_COOKIE, path=f"{_base(request)}/", httponly=True, samesite="strict"
    )
    return response


ROUTES: list[BaseRoute] = [
    Route("/", index, methods=["GET"]),
    Route("/_perdure/login", login_form, methods=["GET"]),
    Route("/_perdure/login", login, methods=["POST"]),
    Route("/_perdure/logout", logout, methods=["POST"]),
    Mount(
        "/_perdure/static",
        app=StaticFiles(packages=[("perdure.http", "static")]),
        name="static",
    ),
]
