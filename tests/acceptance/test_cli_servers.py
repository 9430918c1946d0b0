"""The long-running commands: `perdure dev` (worker + HTTP, with reload), `perdure serve` and
several `perdure worker` processes on one database."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx

from .cli_support import free_port, new_project, perdure, start, stop, wait_for

WF = "workflows-starter"

HELLO_ROUTE = """
    async def hello(request: Request) -> Response:
        return JSONResponse({"hello": "again"})

    return Starlette(routes=[Route("/hello", hello), Route("/", index), Route("/favicon.ico", favicon)])
"""


def test_dev_serves_the_handler_runs_instances_and_reloads_on_change(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    dev = start("dev", "--port", str(port), cwd=project)
    try:
        wait_for(lambda: httpx.get(f"{base}/perdure/api/workflows").status_code == 200)

        # the starter's handler: GET / starts an instance, ?instanceId= reports on it
        started = httpx.get(f"{base}/").json()
        assert started["details"] == {"status": "queued", "output": None, "error": None}

        def complete() -> dict[str, object] | None:
            body = httpx.get(f"{base}/", params={"instanceId": started["id"]}).json()
            return body if body["status"]["status"] == "complete" else None

        assert wait_for(complete)["status"] == {
            "status": "complete",
            "output": {"files": 8, "written": 8},
            "error": None,
        }
        assert httpx.get(f"{base}/perdure/").status_code == 200  # the dashboard
        assert httpx.get(f"{base}/", params={"instanceId": "nope"}).status_code == 404

        # a change to the code restarts the project, on the same port
        app = project / "src/workflows_starter/app.py"
        text = app.read_text()
        end = text.index("    return Starlette(")
        app.write_text(text[:end] + HELLO_ROUTE.lstrip("\n"))
        wait_for(lambda: httpx.get(f"{base}/hello").status_code == 200)
        assert httpx.get(f"{base}/hello").json() == {"hello": "again"}
    finally:
        code, log = stop(dev)

    assert code == 0, log
    assert "changed: src/workflows_starter/app.py; restarting" in log
    assert "Traceback" not in log
    with socket.socket() as sock:  # the child is gone with the parent
        sock.bind(("127.0.0.1", port))


def test_dev_waits_for_a_fix_when_the_code_breaks(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    port = free_port()
    app = project / "src/workflows_starter/app.py"
    good = app.read_text()
    app.write_text(good + "\ndef broken(:\n")
    log = tmp_path / "dev.log"
    dev = start("dev", "--port", str(port), cwd=project, log=log)
    try:
        wait_for(lambda: "save a file to restart" in log.read_text())
        app.write_text(good)
        wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/favicon.ico").status_code == 404)
    finally:
        code, _ = stop(dev)

    text = log.read_text()
    assert code == 0
    assert "syntax error at src/workflows_starter/app.py" in text
    assert "the project stopped (exit code 2)" in text
    assert "Traceback" not in text


def test_dev_reports_a_port_in_use(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = perdure("dev", "--port", str(port), cwd=project)

    assert result.code == 1
    assert f"port {port} on 127.0.0.1 is in use" in result.err


def test_serve_runs_the_api_and_dashboard_without_project_code(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    perdure("deploy", cwd=project)
    (project / "src/workflows_starter/app.py").write_text("raise SystemExit('not loaded')\n")
    port = free_port()
    server = start("serve", "--port", str(port), cwd=project)
    try:
        found = wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/api/workflows").json())
        page = httpx.get(f"http://127.0.0.1:{port}/")
    finally:
        code, log = stop(server)

    assert [w["name"] for w in found["result"]] == [WF]
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert code == 0, log


def test_serve_off_loopback_with_a_token_requires_it(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    perdure("deploy", cwd=project)
    port = free_port()
    server = start(
        "serve",
        "--host",
        "0.0.0.0",
        "--port",
        str(port),
        cwd=project,
        PERDURE_TOKEN="a-long-enough-s3cret",
    )
    url = f"http://127.0.0.1:{port}/api/workflows"
    try:
        wait_for(lambda: httpx.get(url).status_code == 401)
        authorized = httpx.get(url, headers={"Authorization": "Bearer a-long-enough-s3cret"})
    finally:
        stop(server)

    assert authorized.status_code == 200


def test_several_workers_share_the_instances_of_one_database(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    perdure("deploy", cwd=project)
    for n in range(6):
        perdure("workflows", "trigger", WF, "--id", f"job-{n}", cwd=project)

    workers = [start("worker", "--poll-interval", "0.05", cwd=project) for _ in range(2)]
    try:

        def all_complete() -> bool:
            counts = perdure("workflows", "describe", WF, "--json", cwd=project).json["instances"]
            return counts == {"complete": 6}

        wait_for(all_complete, timeout=30, interval=0.2)
    finally:
        results = [stop(w) for w in workers]

    assert [code for code, _ in results] == [0, 0]
    assert all("started" in log and "stopped" in log for _, log in results)
