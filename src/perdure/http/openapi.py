"""The OpenAPI 3.1 document of the JSON API, served at ``/api/openapi.json``.

Written by hand next to the routes (``api.ROUTES``); a test checks that every route appears
here and schemathesis checks that every response matches its schema.
"""

from __future__ import annotations

from typing import Any

from .. import __version__
from ..states import ACTIONS, Status

NAME_PATTERN = r"^[a-zA-Z0-9_][a-zA-Z0-9\-_]*$"

JSONSchema = dict[str, Any]


def _nullable(schema: JSONSchema) -> JSONSchema:
    return {"anyOf": [schema, {"type": "null"}]}


def _ref(name: str) -> JSONSchema:
    return {"$ref": f"#/components/schemas/{name}"}


TIME = {"type": "string", "format": "date-time"}
MAYBE_TIME = {"type": ["string", "null"], "format": "date-time"}
ANY: JSONSchema = {"description": "Any JSON value, as the workflow stored it."}

SCHEMAS: dict[str, JSONSchema] = {
    "Error": {
        "type": "object",
        "required": ["success", "error"],
        "properties": {
            "success": {"const": False},
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "description": "Stable, machine-readable."},
                    "message": {"type": "string", "description": "What was wrong and the fix."},
                },
            },
        },
    },
    "ErrorInfo": {
        "type": "object",
        "required": ["name", "message"],
        "properties": {
            "name": {"type": "string"},
            "message": {"type": "string"},
            "traceback": {"type": ["string", "null"]},
        },
    },
    "Workflow": {
        "type": "object",
        "required": ["name", "class_name", "binding", "version", "created", "modified"],
        "properties": {
            "name": {"type": "string"},
            "class_name": {"type": "string"},
            "binding": {"type": "string"},
            "version": {"type": "string"},
            "created": TIME,
            "modified": TIME,
            "max_concurrency": {"type": ["integer", "null"]},
            "instances": {
                "type": "object",
                "description": "Number of instances by status.",
                "additionalProperties": {"type": "integer", "minimum": 0},
            },
        },
    },
    "InstanceSummary": {
        "type": "object",
        "required": ["workflow", "id", "status", "version", "created"],
        "properties": {
            "workflow": {"type": "string"},
            "id": {"type": "string"},
            "status": {"enum": [s.value for s in Status]},
            "version": {"type": "string"},
            "created": TIME,
            "started": MAYBE_TIME,
            "ended": MAYBE_TIME,
            "modified": MAYBE_TIME,
            "wake_at": MAYBE_TIME,
        },
    },
    "Attempt": {
        "type": "object",
        "required": ["attempt", "start", "end", "success", "error"],
        "properties": {
            "attempt": {"type": "integer", "minimum": 1},
            "start": MAYBE_TIME,
            "end": MAYBE_TIME,
            "duration": {"type": ["number", "null"]},
            "success": {"type": ["boolean", "null"]},
            "error": _nullable(_ref("ErrorInfo")),
        },
    },
    "Step": {
        "type": "object",
        "required": ["name", "count", "type", "status", "start", "end", "attempts"],
        "properties": {
            "name": {"type": "string"},
            "count": {"type": "integer", "minimum": 1},
            "type": {"enum": ["do", "sleep", "wait"]},
            "status": {"type": "string"},
            "start": MAYBE_TIME,
            "end": MAYBE_TIME,
            "duration": {"type": ["number", "null"]},
            "wake_at": MAYBE_TIME,
            "output": ANY,
            "error": _nullable(_ref("ErrorInfo")),
            "config": {"type": ["object", "null"]},
            "attempts": {"type": "array", "items": _ref("Attempt")},
        },
    },
    "Event": {
        "type": "object",
        "required": ["type", "received_at"],
        "properties": {
            "type": {"type": "string"},
            "payload": ANY,
            "received_at": TIME,
            "consumed_by": {"type": ["string", "null"]},
        },
    },
    "InstanceDetails": {
        "type": "object",
        "required": ["workflow", "id", "status", "version", "created", "steps", "events"],
        "properties": {
            "workflow": {"type": "string"},
            "id": {"type": "string"},
            "status": {"enum": [s.value for s in Status]},
            "version": {"type": "string"},
            "params": ANY,
            "output": ANY,
            "error": _nullable(_ref("ErrorInfo")),
            "created": TIME,
            "started": MAYBE_TIME,
            "ended": MAYBE_TIME,
            "duration": {"type": ["number", "null"]},
            "wake_at": MAYBE_TIME,
            "step_count": {"type": "integer", "minimum": 0},
            "steps": {"type": "array", "items": _ref("Step")},
            "events": {"type": "array", "items": _ref("Event")},
        },
    },
    "InstanceStatus": {
        "type": "object",
        "required": ["id", "status"],
        "properties": {
            "id": {"type": "string"},
            "status": {"enum": [s.value for s in Status]},
            "output": ANY,
            "error": _nullable(
                {
                    "type": "object",
                    "required": ["name", "message"],
                    "properties": {"name": {"type": "string"}, "message": {"type": "string"}},
                }
            ),
        },
    },
    "Created": {
        "type": "object",
        "required": ["id", "status", "workflow"],
        "properties": {
            "id": {"type": "string"},
            "status": {"const": "queued"},
            "workflow": {"type": "string"},
        },
    },
    "Activity": {
        "type": "object",
        "required": ["since", "until", "bucket_seconds", "buckets"],
        "properties": {
            "since": TIME,
            "until": TIME,
            "bucket_seconds": {"type": "number"},
            "buckets": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["start", "started", "failed"],
                    "properties": {
                        "start": TIME,
                        "started": {"type": "integer", "minimum": 0},
                        "failed": {"type": "integer", "minimum": 0},
                    },
                },
            },
        },
    },
    "NewInstance": {
        "type": "object",
        "additionalProperties": False,
        "not": {"required": ["id", "instance_id"]},
        "properties": {
            "id": {
                "type": "string",
                "pattern": NAME_PATTERN,
                "maxLength": 100,
                "description": "Defaults to a random UUID. 409 when taken.",
            },
            "instance_id": {
                "type": "string",
                "pattern": NAME_PATTERN,
                "maxLength": 100,
                "description": "Cloudflare's name for `id`; give one or the other.",
            },
            "params": {"description": "Any JSON value up to 1 MiB; `event.payload` in run()."},
        },
    },
}


RESTART_FROM: JSONSchema = {
    "type": "object",
    "description": (
        "This step (its `count`-th use, of this `type`) and every step started after it run "
        "again; earlier results are kept. 422 when the history has no such step."
    ),
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {
            "type": "string",
            "minLength": 1,
            "maxLength": 256,
            "pattern": "^[^\\x00-\\x1f\\x7f]+$",
        },
        "count": {"type": "integer", "minimum": 1},
        "type": {"enum": ["do", "sleep", "waitForEvent"]},
    },
}


# What a client can do with the instance it just created (and what stateful tests follow).
_NEW = {"name": "$request.path.name", "id": "$response.body#/result/id"}
INSTANCE_LINKS: JSONSchema = {
    "GetInstance": {"operationId": "getInstance", "parameters": _NEW},
    "ChangeStatus": {"operationId": "changeInstanceStatus", "parameters": _NEW},
    "SendEvent": {"operationId": "sendEvent", "parameters": _NEW},
}


def _envelope(result: JSONSchema, info: JSONSchema | None = None) -> JSONSchema:
    schema: JSONSchema = {
        "type": "object",
        "required": ["success", "result"],
        "properties": {"success": {"const": True}, "result": result},
    }
    if info is not None:
        schema["properties"]["result_info"] = info
        schema["required"].append("result_info")
    return schema


def _json(schema: JSONSchema) -> JSONSchema:
    return {"application/json": {"schema": schema}}


ERRORS = {
    "400": "Malformed body: not JSON, or nested too deep.",
    "401": "Authentication required (only when the server has a token).",
    "403": "Cross-origin request, or missing CSRF token on a dashboard session.",
    "404": "Unknown workflow, instance or route.",
    "409": "Conflict: the id is taken, or the instance cannot make that transition.",
    "413": "The body or a payload is over its size limit.",
    "421": "The Host header is not allowed (no token: localhost only).",
    "422": "Invalid input: the message says which field and how to fix it.",
    "503": "The database is unavailable.",
}


def _responses(
    ok_status: str,
    description: str,
    schema: JSONSchema,
    *errors: str,
    links: JSONSchema | None = None,
) -> JSONSchema:
    ok: JSONSchema = {"description": description, "content": _json(schema)}
    if links:
        ok["links"] = links
    responses: JSONSchema = {ok_status: ok}
    for code in ("401", "403", "421", "503", *errors):
        responses[code] = {"description": ERRORS[code], "content": _json(_ref("Error"))}
    return responses


def _path_param(name: str, description: str, example: str, max_length: int) -> JSONSchema:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "pattern": NAME_PATTERN, "maxLength": max_length},
        "example": example,
    }


def _workflow(example: str = "onboarding") -> JSONSchema:
    return _path_param("name", "The workflow's name.", example, 64)


INSTANCE = _path_param("id", "The instance id, or `latest` for the newest.", "latest", 100)
EVENT_TYPE = _path_param("type", "The event type, as given to wait_for_event.", "approval", 100)


def _query(name: str, schema: JSONSchema, description: str) -> JSONSchema:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _body(schema: JSONSchema, description: str, *, required: bool = True) -> JSONSchema:
    return {"required": required, "description": description, "content": _json(schema)}


def paths() -> dict[str, Any]:
    list_info = {
        "type": "object",
        "required": ["count", "cursor"],
        "properties": {
            "count": {"type": "integer", "minimum": 0},
            "cursor": {
                "type": ["string", "null"],
                "description": "Pass as `cursor` for the next page; null on the last page.",
            },
        },
    }
    return {
        "/health": {
            "get": {
                "operationId": "health",
                "summary": "Liveness; the only route that needs no token.",
                "security": [],
                "responses": {
                    "200": {
                        "description": "The server is up.",
                        "content": _json(
                            _envelope(
                                {
                                    "type": "object",
                                    "required": ["status"],
                                    "properties": {"status": {"const": "ok"}},
                                }
                            )
                        ),
                    },
                    "421": {"description": ERRORS["421"], "content": _json(_ref("Error"))},
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document.",
                "responses": _responses(
                    "200", "The OpenAPI 3.1 document of this API.", {"type": "object"}
                ),
            }
        },
        "/workflows": {
            "get": {
                "operationId": "listWorkflows",
                "summary": "Registered workflows with instance counts by status.",
                "responses": _responses(
                    "200",
                    "The workflows.",
                    _envelope(
                        {"type": "array", "items": _ref("Workflow")},
                        {
                            "type": "object",
                            "required": ["count"],
                            "properties": {"count": {"type": "integer"}},
                        },
                    ),
                ),
            }
        },
        "/workflows/{name}": {
            "get": {
                "operationId": "getWorkflow",
                "summary": "One workflow with instance counts by status.",
                "parameters": [_workflow()],
                "responses": _responses(
                    "200", "The workflow.", _envelope(_ref("Workflow")), "404", "422"
                ),
            },
            "delete": {
                "operationId": "deleteWorkflow",
                "summary": "Delete a workflow and all its instances.",
                "parameters": [_workflow("retired")],
                "responses": _responses(
                    "200",
                    "Deleted.",
                    _envelope(
                        {
                            "type": "object",
                            "required": ["name", "deleted"],
                            "properties": {"name": {"type": "string"}, "deleted": {"const": True}},
                        }
                    ),
                    "404",
                    "422",
                ),
            },
        },
        "/workflows/{name}/activity": {
            "get": {
                "operationId": "workflowActivity",
                "summary": "Instances started and failed per time bucket (for charts).",
                "parameters": [
                    _workflow(),
                    _query(
                        "hours",
                        {"type": "integer", "minimum": 1, "maximum": 2160, "default": 24},
                        "How far back to look.",
                    ),
                    _query(
                        "buckets",
                        {"type": "integer", "minimum": 1, "maximum": 500, "default": 24},
                        "Number of equal time buckets.",
                    ),
                ],
                "responses": _responses(
                    "200",
                    "Counts per bucket, oldest first.",
                    _envelope(_ref("Activity")),
                    "404",
                    "422",
                ),
            }
        },
        "/workflows/{name}/instances": {
            "get": {
                "operationId": "listInstances",
                "summary": "Instances, newest first, with cursor pagination.",
                "parameters": [
                    _workflow(),
                    _query("status", {"enum": [s.value for s in Status]}, "Only this status."),
                    _query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50},
                        "Page size.",
                    ),
                    _query("cursor", {"type": "string"}, "The cursor of the previous page."),
                ],
                "responses": _responses(
                    "200",
                    "One page of instances.",
                    _envelope({"type": "array", "items": _ref("InstanceSummary")}, list_info),
                    "404",
                    "422",
                ),
            },
            "post": {
                "operationId": "createInstance",
                "summary": "Create (queue) an instance.",
                "parameters": [_workflow()],
                "requestBody": _body(
                    _ref("NewInstance"), "Optional id and params.", required=False
                ),
                "responses": _responses(
                    "201",
                    "Queued.",
                    _envelope(_ref("Created")),
                    "400",
                    "404",
                    "409",
                    "413",
                    "422",
                    links=INSTANCE_LINKS,
                ),
            },
        },
        "/workflows/{name}/instances/batch": {
            "post": {
                "operationId": "createInstanceBatch",
                "summary": "Create up to 100 instances; ids that exist are skipped.",
                "parameters": [_workflow()],
                "requestBody": _body(
                    {"type": "array", "minItems": 1, "maxItems": 100, "items": _ref("NewInstance")},
                    "The instances to create.",
                ),
                "responses": _responses(
                    "201",
                    "The instances created (skipped ids are left out).",
                    _envelope(
                        {"type": "array", "items": _ref("Created")},
                        {
                            "type": "object",
                            "required": ["created", "skipped"],
                            "properties": {
                                "created": {"type": "integer", "minimum": 0},
                                "skipped": {"type": "integer", "minimum": 0},
                            },
                        },
                    ),
                    "400",
                    "404",
                    "413",
                    "422",
                ),
            }
        },
        "/workflows/{name}/instances/{id}": {
            "get": {
                "operationId": "getInstance",
                "summary": "The full history: steps, attempts, errors, outputs, wake-up times.",
                "parameters": [_workflow(), INSTANCE],
                "responses": _responses(
                    "200", "The instance.", _envelope(_ref("InstanceDetails")), "404", "422"
                ),
            }
        },
        "/workflows/{name}/instances/{id}/status": {
            "patch": {
                "operationId": "changeInstanceStatus",
                "summary": "Pause, resume, terminate or restart (optionally from a step).",
                "parameters": [_workflow(), INSTANCE],
                "requestBody": _body(
                    {
                        "oneOf": [
                            {
                                "type": "object",
                                "required": ["status"],
                                "additionalProperties": False,
                                "properties": {
                                    "status": {"enum": [a for a in ACTIONS if a != "restart"]}
                                },
                            },
                            {
                                "type": "object",
                                "required": ["status"],
                                "additionalProperties": False,
                                "properties": {
                                    "status": {"const": "restart"},
                                    "from": RESTART_FROM,
                                },
                            },
                        ]
                    },
                    "The action; only restart takes `from`.",
                ),
                "responses": _responses(
                    "200",
                    "The status after the action.",
                    _envelope(_ref("InstanceStatus")),
                    "400",
                    "404",
                    "409",
                    "413",
                    "422",
                ),
            }
        },
        "/workflows/{name}/instances/{id}/events/{type}": {
            "post": {
                "operationId": "sendEvent",
                "summary": "Deliver an event; kept until a wait_for_event of this type takes it.",
                "parameters": [_workflow(), INSTANCE, EVENT_TYPE],
                "requestBody": _body(
                    {}, "The event payload: any JSON up to 1 MiB.", required=False
                ),
                "responses": _responses(
                    "202",
                    "Stored.",
                    _envelope(
                        {
                            "type": "object",
                            "required": ["id", "type"],
                            "properties": {"id": {"type": "string"}, "type": {"type": "string"}},
                        }
                    ),
                    "400",
                    "404",
                    "409",
                    "413",
                    "422",
                ),
            }
        },
    }


def openapi_document(root_path: str = "") -> dict[str, Any]:
    """The document, with the server URL under the app's mount point."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "perdure",
            "version": __version__,
            "description": (
                "Durable workflows: trigger and steer instances, read their full history. "
                "With a token, send `Authorization: Bearer <token>`."
            ),
        },
        "servers": [{"url": f"{root_path}/api"}],
        "security": [{"bearer": []}],
        "paths": paths(),
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
