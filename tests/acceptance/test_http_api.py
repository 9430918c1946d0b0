"""The JSON API through a real uvicorn server with a worker: every route, every error code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from perdure.http import api
from perdure.http.openapi import openapi_document

from .http_support import Greeter, Server, running_server, serving_asgi, wait_for_status


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    database = str(tmp_path_factory.mktemp("api") / "perdure.db")
    with running_server(database) as running:
        yield running


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["success"] is False
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


def create(client: httpx.Client, workflow: str, **body: Any) -> str:
    response = client.post(f"/api/workflows/{workflow}/instances", json=body)
    assert response.status_code == 201, response.text
    instance_id: str = response.json()["result"]["id"]
    return instance_id


# -- health and workflows


def test_health_answers_ok(client: httpx.Client) -> None:
    response = client.get("/api/health")
    assert response.status_code == 200
    assert response.json() == {"success": True, "result": {"status": "ok"}}


def test_lists_registered_workflows_with_counts_by_status(client: httpx.Client) -> None:
    done = create(client, "greeter", params={"name": "list"})
    wait_for_status(client, "greeter", done, "complete")
    body = client.get("/api/workflows").json()
    names = {wf["name"] for wf in body["result"]}
    assert {"greeter", "approval", "napper", "flaky", "broken", "hostile"} <= names
    assert body["result_info"]["count"] == len(body["result"])
    greeter = next(wf for wf in body["result"] if wf["name"] == "greeter")
    assert greeter["instances"]["complete"] >= 1
    assert greeter["class_name"].endswith(":Greeter")


def test_describes_one_workflow(client: httpx.Client) -> None:
    body = client.get("/api/workflows/greeter").json()
    assert body["success"] is True
    assert body["result"]["name"] == "greeter"
    assert body["result"]["version"]


def test_unknown_workflow_is_404_and_bad_name_is_422(client: httpx.Client) -> None:
    assert error_of(client.get("/api/workflows/nope"), 404)["code"] == "workflow_not_found"
    assert error_of(client.get("/api/workflows/-bad"), 422)["code"] == "invalid"
    assert error_of(client.post("/api/workflows/nope/instances", json={}), 404)["code"] == (
        "workflow_not_found"
    )


def test_activity_counts_started_and_failed_instances_per_bucket(client: httpx.Client) -> None:
    failed = create(client, "broken")
    wait_for_status(client, "broken", failed, "errored")
    body = client.get("/api/workflows/broken/activity?hours=1&buckets=12").json()["result"]
    assert len(body["buckets"]) == 12
    assert body["bucket_seconds"] == 300
    assert sum(b["started"] for b in body["buckets"]) >= 1
    assert sum(b["failed"] for b in body["buckets"]) >= 1
    assert error_of(client.get("/api/workflows/broken/activity?hours=0"), 422)["code"] == "invalid"
    assert error_of(client.get("/api/workflows/nope/activity"), 404)


# -- creating instances


def test_creates_an_instance_and_it_runs_to_completion(client: httpx.Client) -> None:
    response = client.post(
        "/api/workflows/greeter/instances", json={"id": "ada-1", "params": {"name": "Ada"}}
    )
    assert response.status_code == 201
    assert response.json()["result"] == {"id": "ada-1", "status": "queued", "workflow": "greeter"}
    assert response.headers["location"] == "/api/workflows/greeter/instances/ada-1"
    details = wait_for_status(client, "greeter", "ada-1", "complete")
    assert details["output"] == {"greeting": "hello Ada"}
    assert details["params"] == {"name": "Ada"}
    [step] = details["steps"]
    assert step["name"] == "greet"
    assert step["type"] == "do"
    assert step["status"] == "success"
    assert step["output"] == {"greeting": "hello Ada"}
    assert step["attempts"][0]["success"] is True


def test_an_empty_body_creates_an_instance_with_a_random_id(client: httpx.Client) -> None:
    response = client.post("/api/workflows/greeter/instances")
    assert response.status_code == 201
    assert len(response.json()["result"]["id"]) == 36


def test_accepts_cloudflare_instance_id_key(client: httpx.Client) -> None:
    response = client.post("/api/workflows/greeter/instances", json={"instance_id": "cf-style"})
    assert response.status_code == 201
    assert response.json()["result"]["id"] == "cf-style"


def test_a_taken_id_is_409(client: httpx.Client) -> None:
    create(client, "greeter", id="taken")
    error = error_of(client.post("/api/workflows/greeter/instances", json={"id": "taken"}), 409)
    assert error["code"] == "instance_exists"
    assert "taken" in error["message"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"id": "has space"}, "invalid instance id"),
        ({"id": 12}, "must be a string"),
        ({"params": {}, "extra": 1}, "unknown key"),
        ([1, 2], "must be a JSON object"),
        ({"id": "x", "instance_id": "y"}, "not both"),
    ],
)
def test_invalid_create_bodies_are_422(client: httpx.Client, body: Any, fragment: str) -> None:
    error = error_of(client.post("/api/workflows/greeter/instances", json=body), 422)
    assert fragment in error["message"]


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b'{"params": NaN}', b"\xff\xfe", b"[" * 70 + b"]" * 70],
    ids=["syntax", "nan", "not-utf8", "too-deep"],
)
def test_malformed_bodies_are_400(client: httpx.Client, raw: bytes) -> None:
    response = client.post(
        "/api/workflows/greeter/instances",
        content=raw,
        headers={"content-type": "application/json"},
    )
    assert error_of(response, 400)["code"] == "malformed_json"


def test_json_nested_ten_thousand_deep_is_400_not_a_crash(client: httpx.Client) -> None:
    raw = b'{"params":' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    response = client.post("/api/workflows/greeter/instances", content=raw)
    assert "deeper" in error_of(response, 400)["message"]


def test_params_over_one_mebibyte_are_413(client: httpx.Client) -> None:
    big = "x" * (1024 * 1024 + 10)
    response = client.post("/api/workflows/greeter/instances", json={"params": big})
    error = error_of(response, 413)
    assert error["code"] == "payload_too_large"


def test_batch_creates_and_skips_existing_ids(client: httpx.Client) -> None:
    create(client, "greeter", id="batch-0")
    response = client.post(
        "/api/workflows/greeter/instances/batch",
        json=[{"id": "batch-0"}, {"id": "batch-1", "params": {"name": "B"}}, {"id": "batch-2"}],
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert [item["id"] for item in body["result"]] == ["batch-1", "batch-2"]
    assert body["result_info"] == {"created": 2, "skipped": 1}
    assert wait_for_status(client, "greeter", "batch-1", "complete")["output"] == {
        "greeting": "hello B"
    }


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"id": "a"}, "JSON array"),
        ([], "at least one"),
        ([{}] * 101, "at most 100"),
        (["x"], "item 0 must be a JSON object"),
    ],
)
def test_invalid_batches_are_422(client: httpx.Client, body: Any, fragment: str) -> None:
    error = error_of(client.post("/api/workflows/greeter/instances/batch", json=body), 422)
    assert fragment in error["message"]


# -- listing and reading


def test_lists_newest_first_and_pages_with_a_cursor(server: Server) -> None:
    with server.client() as client:
        ids = [f"page-{i}" for i in range(7)]
        for instance_id in ids:
            create(client, "napper", id=instance_id, params={"nap": "1 hour"})
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            query = {"limit": "3", **({"cursor": cursor} if cursor else {})}
            body = client.get("/api/workflows/napper/instances", params=query).json()
            pages += 1
            assert body["result_info"]["count"] == len(body["result"]) <= 3
            seen += [item["id"] for item in body["result"]]
            cursor = body["result_info"]["cursor"]
            if cursor is None:
                break
        mine = [i for i in seen if i.startswith("page-")]
        assert mine == list(reversed(ids))
        assert len(seen) == len(set(seen))
        assert pages >= 3


def test_filters_by_status(client: httpx.Client) -> None:
    done = create(client, "greeter")
    wait_for_status(client, "greeter", done, "complete")
    body = client.get("/api/workflows/greeter/instances", params={"status": "complete"}).json()
    assert body["result"]
    assert {item["status"] for item in body["result"]} == {"complete"}
    assert done in {item["id"] for item in body["result"]}


@pytest.mark.parametrize(
    "query",
    [{"status": "sleepy"}, {"limit": "0"}, {"limit": "many"}, {"limit": "5000"}, {"cursor": "zzz"}],
)
def test_bad_list_queries_are_422(client: httpx.Client, query: dict[str, str]) -> None:
    response = client.get("/api/workflows/greeter/instances", params=query)
    assert error_of(response, 422)["code"] == "invalid"


def test_latest_is_the_newest_instance(client: httpx.Client) -> None:
    create(client, "greeter", id="older-one")
    create(client, "greeter", id="newest-one")
    body = client.get("/api/workflows/greeter/instances/latest").json()
    assert body["result"]["id"] == "newest-one"


def test_unknown_instance_is_404_and_bad_id_is_422(client: httpx.Client) -> None:
    assert error_of(client.get("/api/workflows/greeter/instances/ghost"), 404)["code"] == (
        "instance_not_found"
    )
    assert error_of(client.get("/api/workflows/greeter/instances/-x"), 422)["code"] == "invalid"


def test_history_shows_failed_attempts_and_errors(client: httpx.Client) -> None:
    flaky = create(client, "flaky")
    details = wait_for_status(client, "flaky", flaky, "complete")
    [step] = details["steps"]
    assert [a["success"] for a in step["attempts"]] == [False, True]
    first = step["attempts"][0]["error"]
    assert first["name"] == "ConnectionError"
    assert first["message"] == "first attempt fails"
    assert "Traceback" in first["traceback"]
    assert step["config"]["retries"]["limit"] == 3

    broken = create(client, "broken")
    details = wait_for_status(client, "broken", broken, "errored")
    assert details["error"]["name"] == "ValueError"
    assert details["steps"][0]["status"] == "failure"


def test_history_shows_a_sleep_with_its_wake_up_time(client: httpx.Client) -> None:
    napper = create(client, "napper", params={"nap": "1 hour"})
    details = wait_for_status(client, "napper", napper, "waiting")
    nap = next(s for s in details["steps"] if s["name"] == "nap")
    assert nap["type"] == "sleep"
    assert nap["wake_at"] is not None
    assert details["wake_at"] == nap["wake_at"]


# -- changing status


def patch_status(client: httpx.Client, workflow: str, instance: str, body: Any) -> httpx.Response:
    return client.patch(f"/api/workflows/{workflow}/instances/{instance}/status", json=body)


def test_pause_resume_and_terminate(client: httpx.Client) -> None:
    napper = create(client, "napper", params={"nap": "1 hour"})
    wait_for_status(client, "napper", napper, "waiting")

    paused = patch_status(client, "napper", napper, {"status": "pause"})
    assert paused.status_code == 200
    assert paused.json()["result"]["status"] == "paused"
    assert paused.json()["result"]["id"] == napper

    resumed = patch_status(client, "napper", napper, {"status": "resume"})
    assert resumed.json()["result"]["status"] == "waiting"

    stopped = patch_status(client, "napper", napper, {"status": "terminate"})
    assert stopped.json()["result"]["status"] == "terminated"

    again = patch_status(client, "napper", napper, {"status": "terminate"})
    assert error_of(again, 409)["code"] == "invalid_transition"


def test_restart_runs_it_again_and_from_a_step(client: httpx.Client) -> None:
    napper = create(client, "napper", params={"nap": "10 ms"})
    wait_for_status(client, "napper", napper, "complete")
    restarted = patch_status(client, "napper", napper, {"status": "restart"})
    assert restarted.json()["result"]["status"] == "queued"
    wait_for_status(client, "napper", napper, "complete")

    from_step = patch_status(
        client, "napper", napper, {"status": "restart", "from": {"name": "nap", "type": "sleep"}}
    )
    assert from_step.status_code == 200, from_step.text
    details = wait_for_status(client, "napper", napper, "complete")
    assert [s["name"] for s in details["steps"]] == ["before", "nap", "after"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"status": "explode"}, "status must be one of"),
        ({}, "status must be one of"),
        ({"status": "pause", "from": {"name": "x"}}, "only allowed with status 'restart'"),
        ({"status": "restart", "from": {"count": 1}}, "needs the step's 'name'"),
        ({"status": "restart", "from": {"name": "x", "type": "nap"}}, "from.type"),
        ({"status": "restart", "from": {"name": "x", "count": 0}}, "count"),
        ({"status": "restart", "from": {"name": "x", "type": {}}}, "from.type"),
        ({"status": {"pause": 1}}, "status must be one of"),
        ({"status": "restart", "from": {"name": "no-such-step"}}, "no such step"),
        ({"status": "pause", "rollback": True}, "unknown key"),
        ("pause", "must be a JSON object"),
    ],
)
def test_invalid_status_changes_are_422(client: httpx.Client, body: Any, fragment: str) -> None:
    target = create(client, "napper")
    error = error_of(patch_status(client, "napper", target, body), 422)
    assert fragment in error["message"]


def test_status_change_of_unknown_instance_is_404(client: httpx.Client) -> None:
    response = patch_status(client, "napper", "ghost", {"status": "pause"})
    assert error_of(response, 404)["code"] == "instance_not_found"


# -- events


def test_an_event_wakes_the_waiting_instance(client: httpx.Client) -> None:
    target = create(client, "approval")
    wait_for_status(client, "approval", target, "waiting")
    response = client.post(
        f"/api/workflows/approval/instances/{target}/events/approve", json={"by": "Grace"}
    )
    assert response.status_code == 202
    assert response.json()["result"] == {"id": target, "type": "approve"}
    details = wait_for_status(client, "approval", target, "complete")
    assert details["output"] == {"approved": {"by": "Grace"}}
    [event] = details["events"]
    assert event["type"] == "approve"
    assert event["payload"] == {"by": "Grace"}
    assert event["consumed_by"]


def test_an_event_with_no_body_has_a_null_payload(client: httpx.Client) -> None:
    target = create(client, "approval")
    response = client.post(f"/api/workflows/approval/instances/{target}/events/approve")
    assert response.status_code == 202
    details = wait_for_status(client, "approval", target, "complete")
    assert details["output"] == {"approved": None}


def test_event_errors(client: httpx.Client) -> None:
    target = create(client, "approval")
    base = f"/api/workflows/approval/instances/{target}/events"
    assert error_of(client.post(f"{base}/has.dot", json={}), 422)["code"] == "invalid"
    assert error_of(client.post(f"{base}/approve", content=b"{oops"), 400)
    assert error_of(
        client.post("/api/workflows/approval/instances/ghost/events/approve", json={}), 404
    )["code"] == ("instance_not_found")
    client.post(f"{base}/approve", json=1)
    wait_for_status(client, "approval", target, "complete")
    finished = client.post(f"{base}/approve", json=2)
    assert error_of(finished, 409)["code"] == "invalid_transition"


# -- routes and the document


def test_unknown_routes_are_json_404_and_wrong_methods_405(client: httpx.Client) -> None:
    assert error_of(client.get("/api/nothing/here"), 404)["code"] == "not_found"
    assert error_of(client.put("/api/workflows"), 405)["code"] == "method_not_allowed"


def test_openapi_document_describes_every_route(client: httpx.Client) -> None:
    document = client.get("/api/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    assert document["servers"] == [{"url": "/api"}]
    for route in api.ROUTES:
        path = route.path.removeprefix("/api")  # type: ignore[attr-defined]
        assert path in document["paths"], f"{path} is missing from the OpenAPI document"
        documented = set(document["paths"][path])
        for method in route.methods - {"HEAD"}:  # type: ignore[attr-defined]
            assert method.lower() in documented, f"{method} {path} is not documented"
    for path, operations in document["paths"].items():
        for operation in operations.values():
            assert any(code.startswith("2") for code in operation["responses"]), path
    json.dumps(openapi_document("/x"))


def test_deleting_a_workflow_removes_it_and_its_instances(tmp_path: Path) -> None:
    with (
        running_server(
            str(tmp_path / "d.db"), workflows={"keep": Greeter, "retired": Greeter}
        ) as srv,
        srv.client() as client,
    ):
        create(client, "retired")
        response = client.delete("/api/workflows/retired")
        assert response.status_code == 200
        assert response.json()["result"] == {"name": "retired", "deleted": True}
        assert error_of(client.get("/api/workflows/retired"), 404)["code"] == "workflow_not_found"
        assert error_of(client.delete("/api/workflows/retired"), 404)
        assert client.get("/api/workflows/keep").status_code == 200


# -- mounting next to the user's own app


def test_serves_under_a_prefix_beside_the_users_app(tmp_path: Path) -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    started: list[str] = []

    async def hello(request: Any) -> PlainTextResponse:
        return PlainTextResponse(f"hello from the user app at {request.url.path}")

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: Any) -> Any:
        started.append("up")
        yield

    user_app = Starlette(routes=[Route("/{path:path}", hello)], lifespan=lifespan)
    with (
        running_server(str(tmp_path / "p.db"), prefix="/perdure", user_app=user_app) as srv,
        httpx.Client(base_url=f"http://127.0.0.1:{srv.port}") as client,
    ):
        assert started == ["up"], "the user app's lifespan must run"
        assert client.get("/orders/1").text == "hello from the user app at /orders/1"
        assert client.get("/api/workflows").text.startswith("hello from the user app")
        assert client.get("/perdure/api/health").json()["result"] == {"status": "ok"}
        created = client.post("/perdure/api/workflows/greeter/instances", json={"id": "p1"})
        assert created.headers["location"] == "/perdure/api/workflows/greeter/instances/p1"
        redirect = client.get("/perdure", follow_redirects=False)
        assert redirect.status_code == 307
        assert redirect.headers["location"] == "/perdure/"
        page = client.get("/perdure/")
        assert '<meta name="perdure-base" content="/perdure">' in page.text
        assert client.get("/perdure/_perdure/static/app.js").status_code == 200
        assert client.get("/perdure/api/openapi.json").json()["servers"] == [
            {"url": "/perdure/api"}
        ]


def test_mounts_inside_the_users_own_starlette_app(tmp_path: Path) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from perdure import App
    from perdure.http import create_app

    app = App(database=str(tmp_path / "m.db"), workflows={"greeter": Greeter})
    outer = Starlette(routes=[Mount("/ops/perdure", app=create_app(app))])
    try:
        with serving_asgi(outer) as port, httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
            created = c.post("/ops/perdure/api/workflows/greeter/instances", json={"id": "m1"})
            assert created.status_code == 201, created.text
            assert created.headers["location"] == "/ops/perdure/api/workflows/greeter/instances/m1"
            page = c.get("/ops/perdure/")
            assert '<meta name="perdure-base" content="/ops/perdure">' in page.text
            assert c.get("/ops/perdure/_perdure/static/dashboard.css").status_code == 200
            assert c.get("/ops/perdure/api/workflows/greeter").json()["result"]["name"] == "greeter"
    finally:
        import asyncio

        asyncio.run(app.close())


def test_keep_alive_responses_are_not_held_back_40_ms(tmp_path: Path) -> None:
    """A listening socket made the plain way must still get TCP_NODELAY on its connections."""
    import socket
    import statistics
    import time

    plain = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # proto 0, as many callers make it
    plain.bind(("127.0.0.1", 0))
    plain.listen(64)
    with running_server(str(tmp_path / "k.db"), sock=plain) as srv, srv.client() as client:
        client.get("/api/health")
        delays = []
        for _ in range(20):
            began = time.perf_counter()
            assert client.get("/api/workflows/greeter").status_code == 200
            delays.append(time.perf_counter() - began)
        assert statistics.median(delays) < 0.02, f"median {statistics.median(delays):.3f} s"
