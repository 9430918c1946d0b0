"""Property-based tests of the API against its own OpenAPI document, with schemathesis: no
response is a 5xx, and every response has a documented status and matches its schema."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .http_support import Approval, Greeter, Napper, running_server, serving_asgi

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def schemathesis(url: str, report: Path, *extra: str, examples: int = 60) -> dict[str, Any]:
    """Run the schemathesis CLI and return its JSON report."""
    executable = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert executable, "schemathesis is a dev dependency; install the dev extras"
    command = [
        executable,
        "run",
        url,
        "--checks",
        CHECKS,
        "--max-examples",
        str(examples),
        "--seed",
        "20240601",
        "--workers",
        "2",
        "--request-timeout",
        "10",
        "--report",
        "json",
        "--report-json-path",
        str(report),
        *extra,
    ]
    finished = subprocess.run(
        command, capture_output=True, text=True, timeout=150, check=False, cwd=report.parent
    )
    assert report.exists(), finished.stdout[-3000:] + finished.stderr[-3000:]
    result: dict[str, Any] = json.loads(report.read_text())
    result["output"] = finished.stdout[-6000:]
    result["returncode"] = finished.returncode
    return result


@pytest.fixture
def api_url(tmp_path: Path) -> Iterator[str]:
    # The document's examples name these workflows, so the examples reach real instances.
    workflows = {"onboarding": Approval, "retired": Greeter, "napper": Napper}
    with (
        running_server(str(tmp_path / "st.db"), workflows=workflows) as server,
        server.client() as c,
    ):
        for i in range(3):
            c.post("/api/workflows/onboarding/instances", json={"id": f"seed-{i}"})
        yield f"{server.url}/api/openapi.json"


def test_no_server_errors_and_every_response_matches_the_schema(
    api_url: str, tmp_path: Path
) -> None:
    # Deleting a workflow makes everything after it a 404, so DELETE goes last, on its own.
    main = schemathesis(api_url, tmp_path / "main.json", "--exclude-method", "DELETE")
    assert main["returncode"] == 0, main["output"]
    assert main["failures"] == [] and main["errors"] == [], main["output"]
    assert main["operations"]["tested"] == main["operations"]["selected"] >= 10
    for phase in ("examples", "coverage", "fuzzing"):
        assert main["phases"][phase]["status"] == "success", (phase, main["output"])
    assert main["test_cases"]["generated"] >= 300, main["test_cases"]

    links = re.search(r"API Links:\s+(\d+) covered", main["output"])
    assert links and int(links.group(1)) >= 3, main["output"]  # create -> get, status, event

    delete = schemathesis(
        api_url,
        tmp_path / "delete.json",
        "--include-method",
        "DELETE",
        "--phases",
        "examples,coverage,fuzzing",
    )
    assert delete["returncode"] == 0, delete["output"]
    assert delete["operations"]["tested"] == 1
    assert delete["test_cases"]["generated"] >= 10


# -- the same run must fail on a server error: prove it on an API that has one


BROKEN_SCHEMA = {
    "openapi": "3.1.0",
    "info": {"title": "broken", "version": "1"},
    "paths": {
        "/items/{id}": {
            "get": {
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
                ],
                "responses": {"200": {"description": "ok"}},
            }
        }
    },
}


async def broken_schema(request: Request) -> JSONResponse:
    return JSONResponse(BROKEN_SCHEMA)


async def broken_item(request: Request) -> JSONResponse:
    if int(request.path_params["id"]) > 7:
        raise RuntimeError("a bug")
    return JSONResponse({})


def test_the_same_run_fails_when_the_api_answers_500(tmp_path: Path) -> None:
    app = Starlette(
        routes=[Route("/openapi.json", broken_schema), Route("/items/{id}", broken_item)]
    )
    with serving_asgi(app, lifespan="off") as port:
        report = schemathesis(f"http://127.0.0.1:{port}/openapi.json", tmp_path / "b.json")
    assert report["returncode"] != 0
    assert report["failures"], report["output"]
    assert "Server error" in report["output"] or "500" in report["output"]
