"""Security of the server, from the outside: tokens, sessions, CSRF, origins, hosts, body limits,
headers, and the default bind address."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from perdure import App
from perdure.errors import ConfigError
from perdure.http import api, check_bind, create_app, dashboard, serve
from perdure.http.security import SESSION_COOKIE, Security

from .http_support import TOKEN, Server, running_server

SAMPLE = {"name": "nope", "id": "latest", "type": "approve"}
PUBLIC = {("GET", "/api/health"), ("GET", "/_perdure/login"), ("POST", "/_perdure/login")}


def every_route() -> list[tuple[str, str]]:
    """(method, concrete path) for every route the server has, read off its routers."""
    found: list[tuple[str, str]] = []
    for route in [*api.ROUTES, *dashboard.ROUTES]:
        path: str = route.path  # type: ignore[attr-defined]
        methods = getattr(route, "methods", None)
        if methods is None:  # the static files mount
            found.append(("GET", path + "/app.js"))
            continue
        concrete = re.sub(r"{(\w+)}", lambda m: SAMPLE[m.group(1)], path)
        found += [(m, concrete) for m in sorted(methods - {"HEAD"})]
    return found


ROUTES = every_route()


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    database = str(tmp_path_factory.mktemp("secured") / "perdure.db")
    with running_server(database, token=TOKEN) as running:
        yield running


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    database = str(tmp_path_factory.mktemp("open") / "perdure.db")
    with running_server(database) as running:
        yield running


def csrf_of(page: str) -> str:
    match = re.search(r'<meta name="perdure-csrf" content="([^"]*)">', page)
    assert match, page
    return match.group(1)


def logged_in(server: Server) -> tuple[httpx.Client, str]:
    client = server.client(auth=False, follow_redirects=False)
    response = client.post("/_perdure/login", data={"token": TOKEN, "next": "/?workflow=greeter"})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/?workflow=greeter"
    page = client.get("/")
    assert page.status_code == 200
    return client, csrf_of(page.text)


# -- the auth matrix


def test_the_route_table_covers_api_and_dashboard() -> None:
    paths = {path for _, path in ROUTES}
    assert "/api/workflows/nope/instances/latest/status" in paths
    assert "/_perdure/static/app.js" in paths
    assert len(ROUTES) >= 15


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_every_route_but_health_and_login_needs_the_token(
    secured: Server, method: str, path: str
) -> None:
    public = (method, path) in PUBLIC or path.startswith("/_perdure/static/")
    with secured.client(auth=False, follow_redirects=False) as anonymous:
        response = anonymous.request(method, path, json={} if method != "GET" else None)
        if public:
            # The login form answers 401 to a wrong token, but as its page, not a refusal.
            refused = response.headers.get("www-authenticate") is not None
            assert not refused and response.status_code in (200, 401), response.text
        elif method == "GET" and not path.startswith("/api"):
            assert response.status_code == 303
            assert "/_perdure/login?next=" in response.headers["location"]
        else:
            assert response.status_code == 401, response.text
            assert response.json()["error"]["code"] == "unauthorized"
            assert response.headers["www-authenticate"].startswith("Bearer")
    with secured.client(
        auth=False, headers={"Authorization": "Bearer wrong-token-wrong-token"}
    ) as w:
        wrong = w.request(method, path, json={} if method != "GET" else None)
        if not public:
            assert wrong.status_code == 401
    with secured.client() as authorized:
        right = authorized.request(method, path, json={} if method != "GET" else None)
        assert "www-authenticate" not in right.headers, right.text
        assert right.status_code not in (403, 500), right.text


def test_bearer_token_gives_the_whole_api(secured: Server) -> None:
    with secured.client() as client:
        created = client.post("/api/workflows/greeter/instances", json={"id": "bearer-1"})
        assert created.status_code == 201
        assert client.get("/api/workflows/greeter/instances/bearer-1").status_code == 200


# -- dashboard sessions and CSRF


def test_login_sets_a_strict_httponly_session_cookie(secured: Server) -> None:
    with secured.client(auth=False, follow_redirects=False) as client:
        response = client.post("/_perdure/login", data={"token": TOKEN, "next": "/"})
        assert response.status_code == 303
        cookie = response.headers["set-cookie"]
        assert cookie.startswith(f"{SESSION_COOKIE}=")
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie
        assert "Path=/" in cookie
        assert TOKEN not in cookie


def test_a_wrong_token_shows_the_form_again(secured: Server) -> None:
    with secured.client(auth=False) as client:
        response = client.post("/_perdure/login", data={"token": "not-the-token-at-all"})
        assert response.status_code == 401
        assert "That token is not right." in response.text
        assert "set-cookie" not in response.headers


def test_login_never_redirects_off_site(secured: Server) -> None:
    with secured.client(auth=False, follow_redirects=False) as client:
        for target in ["//evil.example/x", "https://evil.example", "/\\evil.example"]:
            response = client.post("/_perdure/login", data={"token": TOKEN, "next": target})
            assert response.headers["location"] == "/"


def test_session_reads_freely_but_writes_only_with_the_csrf_token(secured: Server) -> None:
    client, csrf = logged_in(secured)
    try:
        assert csrf
        assert client.get("/api/workflows").status_code == 200
        refused = client.post("/api/workflows/greeter/instances", json={})
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "csrf"
        forged = client.post(
            "/api/workflows/greeter/instances", json={}, headers={"X-Perdure-CSRF": "0" * 64}
        )
        assert forged.status_code == 403
        allowed = client.post(
            "/api/workflows/greeter/instances", json={}, headers={"X-Perdure-CSRF": csrf}
        )
        assert allowed.status_code == 201
    finally:
        client.close()


def test_a_foreign_origin_is_refused_even_with_session_and_csrf(secured: Server) -> None:
    client, csrf = logged_in(secured)
    try:
        response = client.post(
            "/api/workflows/greeter/instances",
            json={},
            headers={"X-Perdure-CSRF": csrf, "Origin": "https://evil.example"},
        )
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "cross_origin"
    finally:
        client.close()


def test_expired_or_tampered_sessions_are_refused(secured: Server) -> None:
    security = Security.build(token=TOKEN, max_body=1024, allowed_hosts=None)
    expired = security.new_session(issued=time.time() - security.session_ttl - 60)
    fresh = security.new_session()
    tampered = fresh[:-1] + ("0" if fresh[-1] != "0" else "1")
    for cookie, expected in [(expired, 401), (tampered, 401), (fresh, 200)]:
        with secured.client(auth=False, cookies={SESSION_COOKIE: cookie}) as client:
            assert client.get("/api/workflows").status_code == expected


def test_logout_needs_csrf_and_clears_the_cookie(secured: Server) -> None:
    client, csrf = logged_in(secured)
    try:
        assert client.post("/_perdure/logout").status_code == 403
        response = client.post("/_perdure/logout", headers={"X-Perdure-CSRF": csrf})
        assert response.status_code == 204
        assert f'{SESSION_COOKIE}=""' in response.headers["set-cookie"]
        assert "Max-Age=0" in response.headers["set-cookie"]
    finally:
        client.close()


# -- without a token: loopback only, and no cross-site writes


def test_without_a_token_foreign_hosts_get_421(open_server: Server) -> None:
    with open_server.client() as client:
        rebinding = client.get("/api/workflows", headers={"Host": "attacker.example"})
        assert rebinding.status_code == 421
        assert rebinding.json()["error"]["code"] == "host_not_allowed"
        assert client.get("/", headers={"Host": "attacker.example:8787"}).status_code == 421
        for host in ["localhost", f"localhost:{open_server.port}", "127.0.0.1", "[::1]:80"]:
            assert client.get("/api/health", headers={"Host": host}).status_code == 200


def test_with_a_token_any_host_may_be_used(secured: Server) -> None:
    with secured.client() as client:
        response = client.get("/api/workflows", headers={"Host": "perdure.example.com"})
        assert response.status_code == 200


def test_without_a_token_cross_site_writes_are_refused(open_server: Server) -> None:
    with open_server.client() as client:
        url = "/api/workflows/greeter/instances"
        for origin in ["http://evil.example", "null", "http://127.0.0.1:1"]:
            response = client.post(url, json={}, headers={"Origin": origin})
            assert response.status_code == 403, origin
        same = client.post(url, json={}, headers={"Origin": f"http://127.0.0.1:{open_server.port}"})
        assert same.status_code == 201
        assert client.post(url, json={}).status_code == 201  # curl and scripts send no Origin
        # A form post from another site, the classic CSRF, never gets through.
        form = client.post(
            url,
            content=b"id=csrf",
            headers={
                "Origin": "http://evil.example",
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        assert form.status_code == 403


# -- body limits


def raw_request(port: int, head: bytes, body_parts: list[bytes]) -> tuple[bytes, float]:
    """Send a request piece by piece over a plain socket; return the response and its delay."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        began = time.monotonic()
        sock.sendall(head)
        try:
            for part in body_parts:
                sock.sendall(part)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before taking the rest: what we want
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data, time.monotonic() - began


def test_a_declared_oversized_body_is_refused_before_it_is_sent(open_server: Server) -> None:
    head = (
        b"POST /api/workflows/greeter/instances HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 10485760\r\n\r\n"
    )
    response, elapsed = raw_request(open_server.port, head, [b"{" + b" " * 1000])
    assert response.startswith(b"HTTP/1.1 413"), response[:200]
    assert b"payload_too_large" in response or b"content-length" in response.lower()
    assert elapsed < 1.0, f"413 took {elapsed:.3f} s"


def test_a_streamed_body_is_cut_off_as_it_passes_the_limit(open_server: Server) -> None:
    head = (
        b"POST /api/workflows/greeter/instances HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b" " * 65536
    # 1.25 MiB of chunks and never the final empty chunk: the body is never complete.
    parts = [b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(20)]
    response, _ = raw_request(open_server.port, head, parts)
    assert response.startswith(b"HTTP/1.1 413"), response[:200]


def test_a_body_just_under_the_limit_is_read(open_server: Server) -> None:
    padding = " " * (1024 * 1024)
    with open_server.client() as client:
        body = '{"params": {"pad": "' + "x" * 1000 + '"}}' + padding
        response = client.post("/api/workflows/greeter/instances", content=body.encode())
        assert response.status_code == 201


# -- headers


def test_html_has_a_strict_csp_and_every_response_nosniff(open_server: Server) -> None:
    with open_server.client() as client:
        for path in ["/", "/?workflow=greeter&instance=x"]:
            page = client.get(path)
            csp = page.headers["content-security-policy"]
            assert "script-src 'self'" in csp
            assert "unsafe-inline" not in csp
            assert "object-src 'none'" in csp
            assert "frame-ancestors 'none'" in csp
            assert page.headers["x-frame-options"] == "DENY"
            assert '<script type="module" src="/_perdure/static/app.js"></script>' in page.text
            assert "<script>" not in page.text
        for path in ["/api/workflows", "/api/nothing", "/_perdure/static/app.js"]:
            response = client.get(path)
            assert response.headers["x-content-type-options"] == "nosniff"
        script = client.get("/_perdure/static/app.js")
        assert "javascript" in script.headers["content-type"]
        assert client.get("/_perdure/static/../app.py").status_code == 404


def test_the_login_page_has_the_same_csp(secured: Server) -> None:
    with secured.client(auth=False) as client:
        page = client.get("/_perdure/login")
        assert page.status_code == 200
        assert "unsafe-inline" not in page.headers["content-security-policy"]
        assert 'type="password"' in page.text


# -- binding


def test_refuses_to_listen_beyond_loopback_without_a_token(sqlite_url: str) -> None:
    for host in ["0.0.0.0", "192.168.1.10", "::", "example.com"]:
        with pytest.raises(ConfigError, match="without a token"):
            check_bind(host, None)
    check_bind("127.0.0.1", None)
    check_bind("localhost", None)
    check_bind("::1", None)
    check_bind("0.0.0.0", TOKEN)
    with pytest.raises(ConfigError, match=r"refusing to serve on 0\.0\.0\.0"):
        serve(App(database=sqlite_url), host="0.0.0.0", port=0)


def test_short_tokens_and_bad_options_are_refused(sqlite_url: str) -> None:
    app = App(database=sqlite_url)
    with pytest.raises(ConfigError, match="at least 16 characters"):
        create_app(app, token="short")
    with pytest.raises(ConfigError, match="prefix"):
        create_app(app, prefix="perdure")
    with pytest.raises(ConfigError, match="max_body"):
        create_app(app, max_body=10)


def listening(port: int) -> set[str]:
    """Local addresses listening on ``port``, from /proc/net/tcp{,6}."""
    found = set()
    for table in ["/proc/net/tcp", "/proc/net/tcp6"]:
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, state = fields[1], fields[3]
            host, port_hex = address.rsplit(":", 1)
            if state == "0A" and int(port_hex, 16) == port:
                found.add(host)
    return found


def test_by_default_only_loopback_listens(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    script = (
        "import perdure, sys\n"
        "from perdure.http import serve\n"
        f"serve(perdure.App(database={str(tmp_path / 'b.db')!r}), port={port}, log_level='error')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PERDURE_TOKEN"}
    process = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        deadline = time.monotonic() + 10
        while not listening(port):
            assert process.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "the server did not listen"
            time.sleep(0.05)
        assert listening(port) == {"0100007F"}  # 127.0.0.1, and nothing else
        assert httpx.get(f"http://127.0.0.1:{port}/api/health").status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
