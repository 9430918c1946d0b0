"""The guard in front of every perdure route: hosts, origins, auth, sessions, CSRF, body size.

One ASGI middleware decides, before any handler runs, whether a request may go on:

- **Host allowlist.** Without a token the server only answers to loopback host names, so a web
  page that rebinds its DNS name to 127.0.0.1 gets 421 instead of the API.
- **Origin.** A state-changing request (anything but GET/HEAD) that carries a foreign ``Origin``
  is refused with 403; browsers always send ``Origin`` on cross-site POST/PATCH/DELETE.
- **Auth** (only with a token). ``Authorization: Bearer <token>`` for API clients; a signed,
  HttpOnly, SameSite=Strict session cookie for the dashboard, which must also send its CSRF
  token in ``X-Perdure-CSRF`` on state-changing requests. Only the health route, the login
  form and the static assets are public.
- **Body size.** A ``Content-Length`` over the limit is refused with 413 before the body is
  read; handlers count the bytes of streamed bodies as they arrive (see ``api.read_body``).
- **Headers.** ``nosniff``, no referrer to other sites, no framing, and a strict CSP on every response.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Collection
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import quote, urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import ConfigError

SESSION_COOKIE = "perdure_session"
CSRF_HEADER = "x-perdure-csrf"
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_SESSION_TTL = 7 * 24 * 3600.0

# No inline script or style anywhere: the dashboard is static files plus DOM calls.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
DATA_CSP = "default-src 'none'; frame-ancestors 'none'; sandbox"

PUBLIC_PATHS = frozenset({"/api/health", "/_perdure/login"})
PUBLIC_PREFIXES = ("/_perdure/static/",)


def is_loopback(host: str) -> bool:
    """True for names and addresses that only this machine can reach."""
    host = host.strip().lower().strip("[]")
    if host in LOOPBACK_HOSTS or host == "::1":
        return True
    return host.startswith("127.") and all(part.isdigit() for part in host.split("."))


def host_name(header: str) -> str:
    """The host of a ``Host`` header without its port: ``[::1]:8787`` -> ``[::1]``."""
    header = header.strip().lower()
    if header.startswith("["):
        end = header.find("]")
        return header[: end + 1] if end > 0 else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


@dataclass(frozen=True, slots=True)
class Security:
    """What the guard enforces; built once by ``create_app``."""

    token_digest: bytes | None
    session_key: bytes
    allowed_hosts: frozenset[str] | None
    max_body: int
    session_ttl: float = DEFAULT_SESSION_TTL

    @classmethod
    def build(
        cls,
        *,
        token: str | None,
        max_body: int,
        allowed_hosts: Collection[str] | None,
        session_ttl: float = DEFAULT_SESSION_TTL,
    ) -> Security:
        if token is not None:
            # A token from the environment may carry a trailing newline; anything shorter
            # than 16 characters is too easy to guess for a server others can reach.
            token = token.strip()
            if len(token) < 16:
                raise ConfigError(
                    "the token must be at least 16 characters; generate one with "
                    "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
                )
        hosts: frozenset[str] | None
        if allowed_hosts is not None:
            hosts = frozenset(host_name(h) for h in allowed_hosts)
        elif token is None:
            hosts = LOOPBACK_HOSTS
        else:
            hosts = None
        digest = None if token is None else hashlib.sha256(token.encode()).digest()
        # Sessions survive a restart of the server (so `perdure dev` reloads keep you logged
        # in) and die when the token changes.
        key = (
            secrets.token_bytes(32)
            if token is None
            else hmac.new(token.encode(), b"perdure session key v1", hashlib.sha256).digest()
        )
        return cls(digest, key, hosts, max_body, session_ttl)

    @property
    def enabled(self) -> bool:
        return self.token_digest is not None

    def check_token(self, candidate: str) -> bool:
        if self.token_digest is None:
            return False
        digest = hashlib.sha256(candidate.strip().encode()).digest()
        return hmac.compare_digest(digest, self.token_digest)

    # -- sessions: "v1.<issued>.<nonce>.<signature>"

    def _sign(self, text: str) -> str:
        return hmac.new(self.session_key, text.encode(), hashlib.sha256).hexdigest()

    def new_session(self, *, issued: float | None = None) -> str:
        stamp = int(time.time() if issued is None else issued)
        body = f"v1.{stamp}.{secrets.token_urlsafe(18)}"
        return f"{body}.{self._sign(body)}"

    def session_nonce(self, cookie: str | None) -> str | None:
        """The nonce of a valid, unexpired session cookie, else None."""
        if not cookie or len(cookie) > 200:
            return None
        parts = cookie.split(".")
        if len(parts) != 4 or parts[0] != "v1" or not parts[1].isdigit():
            return None
        body = ".".join(parts[:3])
        if not hmac.compare_digest(self._sign(body), parts[3]):
            return None
        if time.time() - int(parts[1]) > self.session_ttl:
            return None
        return parts[2]

    def csrf_token(self, nonce: str) -> str:
        return self._sign(f"csrf:{nonce}")

    def check_csrf(self, nonce: str, candidate: str) -> bool:
        return hmac.compare_digest(self.csrf_token(nonce), candidate)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _cookie(scope: Scope, name: str) -> str | None:
    raw = _header(scope, b"cookie")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # a malformed Cookie header is the client's problem, not a 500
        return None
    morsel = jar.get(name)
    return None if morsel is None else morsel.value


def route_path(scope: Scope) -> str:
    """The path below the dashboard's prefix (Starlette keeps the prefix in root_path)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path or "/"


class Guard:
    """ASGI middleware applying ``Security`` to every request under perdure's paths."""

    def __init__(self, app: ASGIApp, security: Security) -> None:
        self.app = app
        self.security = security

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        refusal = self._refusal(scope, path)
        send = _with_security_headers(send, api=path.startswith("/api"))
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope, path: str) -> ASGIApp | None:
        sec = self.security
        method = scope["method"]
        host = host_name(_header(scope, b"host") or "")
        if sec.allowed_hosts is not None and host not in sec.allowed_hosts:
            return error_app(
                421,
                "host_not_allowed",
                f"this server does not answer to the host {host[:80]!r}; without a token it "
                "only serves localhost (start it with a token to serve other hosts)",
            )
        length = _header(scope, b"content-length")
        if length is not None:
            if not length.isdigit():
                return error_app(400, "malformed", "Content-Length must be a number of bytes")
            if int(length) > sec.max_body:
                return error_app(
                    413,
                    "payload_too_large",
                    f"the request body is {int(length):,} bytes; the limit is {sec.max_body:,}",
                    close=True,
                )
        if method not in SAFE_METHODS and not _same_origin(scope):
            return error_app(
                403,
                "cross_origin",
                "cross-origin requests that change state are refused; call the API from "
                "the dashboard's own origin or from a non-browser client",
            )
        if not sec.enabled:
            scope["perdure.auth"] = "none"
            return None
        if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            return None
        authorization = _header(scope, b"authorization")
        if authorization is not None:
            scheme, _, credential = authorization.partition(" ")
            if scheme.lower() == "bearer" and sec.check_token(credential):
                scope["perdure.auth"] = "bearer"
                return None
            return error_app(401, "unauthorized", "the bearer token is not valid", bearer=True)
        nonce = sec.session_nonce(_cookie(scope, SESSION_COOKIE))
        if nonce is None:
            if method == "GET" and not path.startswith("/api"):
                return _login_redirect(scope, path)
            return error_app(
                401,
                "unauthorized",
                "authentication required: send `Authorization: Bearer <token>`, or log in "
                "to the dashboard",
                bearer=True,
            )
        if method not in SAFE_METHODS:
            candidate = _header(scope, CSRF_HEADER.encode()) or ""
            if not sec.check_csrf(nonce, candidate):
                return error_app(
                    403,
                    "csrf",
                    f"missing or wrong CSRF token; the dashboard sends it in {CSRF_HEADER}",
                )
        scope["perdure.auth"] = "session"
        scope["perdure.session"] = nonce
        return None


def _same_origin(scope: Scope) -> bool:
    origin = _header(scope, b"origin")
    if origin is None:
        return True  # not a browser, or a same-origin navigation of an old browser
    host = (_header(scope, b"host") or "").lower()
    try:
        netloc = urlsplit(origin).netloc.lower()
    except ValueError:
        return False
    if not netloc:
        return False  # "null" from sandboxed frames and file: pages
    default = {"http": ":80", "https": ":443"}.get(scope.get("scheme", "http"), "")
    return netloc == host or netloc + default == host or netloc == host + default


def _with_security_headers(send: Send, *, api: bool) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message.get("headers", [])]
            names = {k.lower() for k, _ in headers}
            content_type = b""
            for key, value in headers:
                if key.lower() == b"content-type":
                    content_type = value
            html = content_type.startswith(b"text/html")
            extra = [
                (b"x-content-type-options", b"nosniff"),
                # Not "no-referrer": with it, browsers send "Origin: null" on same-origin
                # form posts (the login form), which the origin check must refuse.
                (b"referrer-policy", b"same-origin"),
                (b"x-frame-options", b"DENY"),
                (b"cross-origin-opener-policy", b"same-origin"),
                (b"cross-origin-resource-policy", b"same-origin"),
                (b"content-security-policy", (PAGE_CSP if html else DATA_CSP).encode()),
            ]
            if (api or html) and b"cache-control" not in names:
                extra.append((b"cache-control", b"no-store"))
            headers += [(k, v) for k, v in extra if k not in names]
            message = {**message, "headers": headers}
        await send(message)

    return wrapped


def error_app(
    status: int, code: str, message: str, *, bearer: bool = False, close: bool = False
) -> ASGIApp:
    """A tiny ASGI app answering with perdure's JSON error shape."""
    body = json.dumps(
        {"success": False, "error": {"code": code, "message": message}}, ensure_ascii=False
    ).encode()
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if bearer:
        headers.append((b"www-authenticate", b'Bearer realm="perdure"'))
    if close:
        # The client may still be sending a huge body; answering and closing is cheaper
        # than reading it.
        headers.append((b"connection", b"close"))

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def _login_redirect(scope: Scope, path: str) -> ASGIApp:
    root = scope.get("root_path", "")
    query = scope.get("query_string", b"").decode("latin-1")
    target = path + (f"?{query}" if query else "")
    location = f"{root}/_perdure/login?next={quote(target, safe='')}"

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 303,
                "headers": [(b"location", location.encode()), (b"content-length", b"0")],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    return app


def safe_next(target: str | None) -> str:
    """A post-login destination inside the dashboard; anything else becomes ``/``."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if any(ord(c) < 0x20 for c in target):
        return "/"
    return target


def session_cookie_header(
    value: str, *, path: str, secure: bool, max_age: float | None
) -> dict[str, Any]:
    """Keyword arguments for ``Response.set_cookie``."""
    return {
        "key": SESSION_COOKIE,
        "value": value,
        "max_age": None if max_age is None else int(max_age),
        "path": path,
        "httponly": True,
        "samesite": "strict",
        "secure": secure,
    }
