"""The JSON API, shaped after Cloudflare's Workflows REST API.

Success: ``{"success": true, "result": ..., "result_info"?: {...}}``.
Failure: ``{"success": false, "error": {"code": "...", "message": "..."}}`` with 400 (malformed
body), 401/403 (auth), 404 (unknown), 409 (conflict), 413 (too large), 422 (invalid), 503
(database unavailable). A client error is never a 500; ``error_response`` is the one place that
maps exceptions to statuses.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .. import validate
from ..client.aio import App, Instance
from ..client.models import iso
from ..errors import (
    ConflictError,
    DatabaseError,
    NotFoundError,
    PayloadTooLargeError,
    PerdureError,
    ValidationError,
)
from ..states import ACTIONS
from .openapi import openapi_document

log = logging.getLogger("perdure.http")

MAX_JSON_DEPTH = 64
_MISSING: Any = object()


class HttpError(Exception):
    """An error with its HTTP status, raised by handlers for problems of the request itself."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


# -- responses


def ok(
    result: Any,
    *,
    status: int = 200,
    info: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"success": True, "result": result}
    if info is not None:
        body["result_info"] = dict(info)
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def error_json(status: int, code: str, message: str, **headers: str) -> JSONResponse:
    return JSONResponse(
        {"success": False, "error": {"code": code, "message": message}},
        status_code=status,
        headers=headers or None,
    )


def error_response(exc: BaseException) -> JSONResponse:
    """Every exception a route can raise, mapped to a status in one place."""
    if isinstance(exc, HttpError):
        return error_json(exc.status, exc.code, exc.message)
    if isinstance(exc, PayloadTooLargeError):
        return error_json(413, exc.code, str(exc))
    if isinstance(exc, ValidationError):
        return error_json(422, exc.code, str(exc))
    if isinstance(exc, NotFoundError):
        return error_json(404, exc.code, str(exc))
    if isinstance(exc, ConflictError):
        return error_json(409, exc.code, str(exc))
    if isinstance(exc, DatabaseError):
        log.error("database error: %s", exc)
        return error_json(503, exc.code, "the database is unavailable; try again shortly")
    if isinstance(exc, HTTPException):
        if exc.status_code == 405:
            return error_json(
                405,
                "method_not_allowed",
                "this route does not accept that method",
                **(exc.headers or {}),
            )
        if exc.status_code == 404:
            return error_json(404, "not_found", "no such route; see /api/openapi.json")
        return error_json(exc.status_code, "http_error", str(exc.detail))
    if isinstance(exc, PerdureError):
        log.error("unexpected perdure error", exc_info=exc)
        return error_json(500, exc.code, "internal error; see the server log")
    log.error("unexpected error", exc_info=exc)
    return error_json(500, "internal_error", "internal error; see the server log")


# -- request bodies


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it passes ``limit`` (never read whole first)."""
    size = 0
    chunks: list[bytes] = []
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HttpError(
                413, "payload_too_large", f"the request body is over the limit of {limit:,} bytes"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _depth_ok(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return False
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return True


def parse_json(raw: bytes) -> Any:
    """Decode a JSON body; ``_MISSING`` when empty. Malformed or too deep: 400."""
    if not raw.strip():
        return _MISSING
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise HttpError(400, "malformed_json", "the request body is not UTF-8 text") from None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise HttpError(
            400, "malformed_json", f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels"
        ) from None
    except ValueError as exc:
        raise HttpError(
            400, "malformed_json", f"the request body is not valid JSON: {exc}"
        ) from None
    if not _depth_ok(value, MAX_JSON_DEPTH):
        raise HttpError(
            400, "malformed_json", f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels"
        )
    return value


async def json_body(request: Request) -> Any:
    limit: int = request.app.state.max_body
    return parse_json(await read_body(request, limit))


def _object(value: Any, what: str, keys: set[str]) -> dict[str, Any]:
    if value is _MISSING:
        return {}
    if not isinstance(value, dict):
        raise ValidationError(f"{what} must be a JSON object, not {type(value).__name__}")
    unknown = set(value) - keys
    if unknown:
        raise ValidationError(
            f"{what}: unknown key(s) {sorted(unknown)}; allowed: {', '.join(sorted(keys))}"
        )
    return value


def _new_instance(item: Any, what: str) -> dict[str, Any]:
    """``{"id"?, "params"?}``; Cloudflare's ``instance_id`` is accepted for ``id``."""
    body = _object(item, what, {"id", "instance_id", "params"})
    if "instance_id" in body:
        if "id" in body:
            raise ValidationError(f"{what}: give either 'id' or 'instance_id', not both")
        body = {**body, "id": body.pop("instance_id")}
    return body


def _int_query(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ValidationError(f"{name} must be an integer between {low} and {high}, got {raw!r}")
    return value


# -- handlers


def _app(request: Request) -> App:
    app: App = request.app.state.perdure
    return app


def _name(request: Request) -> str:
    return validate.workflow_name(request.path_params["name"])


async def _instance(request: Request) -> Instance:
    app = _app(request)
    handle = app.workflow(_name(request))
    raw_id = request.path_params["id"]
    if raw_id == "latest":
        return await handle.get("latest")
    return Instance(app, handle.name, validate.instance_id(raw_id))


async def health(request: Request) -> Response:
    return ok({"status": "ok"})


async def openapi(request: Request) -> Response:
    return JSONResponse(openapi_document(request.scope.get("root_path", "")))


async def list_workflows(request: Request) -> Response:
    infos = await _app(request).list_workflows()
    return ok([info.to_json() for info in infos], info={"count": len(infos)})


async def get_workflow(request: Request) -> Response:
    info = await _app(request).describe_workflow(_name(request))
    return ok(info.to_json())


async def delete_workflow(request: Request) -> Response:
    name = _name(request)
    await _app(request).delete_workflow(name)
    return ok({"name": name, "deleted": True})


async def activity(request: Request) -> Response:
    """Instances started and failed per bucket, for the dashboard's charts."""
    app = _app(request)
    name = _name(request)
    hours = _int_query(request, "hours", 24, 1, 24 * 90)
    count = _int_query(request, "buckets", 24, 1, 500)
    await app.describe_workflow(name)
    store = await app.store()
    bucket = hours * 3600 / count
    now = time.time()
    since = now - hours * 3600
    found = {
        round((b["start"] - since) / bucket): b for b in await store.activity(name, since, bucket)
    }
    buckets = [
        {
            "start": iso(since + i * bucket),
            "started": int(found.get(i, {}).get("started", 0)),
            "failed": int(found.get(i, {}).get("failed", 0)),
        }
        for i in range(count)
    ]
    return ok(
        {"since": iso(since), "until": iso(now), "bucket_seconds": bucket, "buckets": buckets}
    )


async def create_instance(request: Request) -> Response:
    app = _app(request)
    handle = app.workflow(_name(request))
    body = _new_instance(await json_body(request), "the request body")
    instance = await handle.create(id=body.get("id"), params=body.get("params"))
    root = request.scope.get("root_path", "")
    return ok(
        {"id": instance.id, "status": "queued", "workflow": handle.name},
        status=201,
        headers={"location": f"{root}/api/workflows/{handle.name}/instances/{instance.id}"},
    )


async def create_batch(request: Request) -> Response:
    app = _app(request)
    handle = app.workflow(_name(request))
    body = await json_body(request)
    if not isinstance(body, list):
        raise ValidationError(
            "the request body must be a JSON array of {'id'?, 'params'?} objects (1 to 100)"
        )
    items = [_new_instance(item, f"item {i}") for i, item in enumerate(body)]
    created = await handle.create_batch(items)
    return ok(
        [{"id": i.id, "status": "queued", "workflow": handle.name} for i in created],
        status=201,
        info={"created": len(created), "skipped": len(items) - len(created)},
    )


async def list_instances(request: Request) -> Response:
    app = _app(request)
    handle = app.workflow(_name(request))
    status = request.query_params.get("status") or None
    limit = _int_query(request, "limit", 50, 1, 1000)
    cursor = request.query_params.get("cursor") or None
    page, next_cursor = await handle.list(status=status, limit=limit, cursor=cursor)
    return ok([s.to_json() for s in page], info={"count": len(page), "cursor": next_cursor})


async def get_instance(request: Request) -> Response:
    instance = await _instance(request)
    return ok((await instance.describe()).to_json())


RESTART_TYPES = {"do", "sleep", "wait", "waitForEvent", "wait_for_event"}


async def change_status(request: Request) -> Response:
    instance = await _instance(request)
    body = _object(await json_body(request), "the request body", {"status", "from"})
    action = body.get("status")
    if not isinstance(action, str) or action not in ACTIONS:
        raise ValidationError(
            f"status must be one of {', '.join(ACTIONS)}; got {json.dumps(action)[:80]}"
        )
    start = body.get("from")
    if start is not None and action != "restart":
        raise ValidationError("'from' is only allowed with status 'restart'")
    if action == "restart" and start is not None:
        step = _object(start, "'from'", {"name", "count", "type"})
        if "name" not in step:
            raise ValidationError("'from' needs the step's 'name' (and optional 'count', 'type')")
        kind = step.get("type", "do")
        if not isinstance(kind, str) or kind not in RESTART_TYPES:
            raise ValidationError("'from.type' must be one of do, sleep, waitForEvent")
        result = await instance.restart(
            from_step=step["name"], count=step.get("count", 1), kind=kind
        )
    else:
        act: Callable[[], Awaitable[Any]] = getattr(instance, str(action))
        result = await act()
    return ok({"id": instance.id, **result.to_json()})


async def send_event(request: Request) -> Response:
    instance = await _instance(request)
    event_type = validate.event_type(request.path_params["type"])
    payload = await json_body(request)
    await instance.send_event(event_type, None if payload is _MISSING else payload)
    return ok({"id": instance.id, "type": event_type}, status=202)


ROUTES: list[BaseRoute] = [
    Route("/api/health", health, methods=["GET"]),
    Route("/api/openapi.json", openapi, methods=["GET"]),
    Route("/api/workflows", list_workflows, methods=["GET"]),
    Route("/api/workflows/{name}", get_workflow, methods=["GET"]),
    Route("/api/workflows/{name}", delete_workflow, methods=["DELETE"]),
    Route("/api/workflows/{name}/activity", activity, methods=["GET"]),
    Route("/api/workflows/{name}/instances", list_instances, methods=["GET"]),
    Route("/api/workflows/{name}/instances", create_instance, methods=["POST"]),
    Route("/api/workflows/{name}/instances/batch", create_batch, methods=["POST"]),
    Route("/api/workflows/{name}/instances/{id}", get_instance, methods=["GET"]),
    Route("/api/workflows/{name}/instances/{id}/status", change_status, methods=["PATCH"]),
    Route("/api/workflows/{name}/instances/{id}/events/{type}", send_event, methods=["POST"]),
]
