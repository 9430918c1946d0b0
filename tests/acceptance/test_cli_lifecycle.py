"""Steering instances from the command line: pause, resume, terminate, restart, send-event, delete."""

from __future__ import annotations

from pathlib import Path

from .cli_support import new_project, perdure, start, stop

WF = "workflows-starter"


def test_pause_resume_terminate_and_restart_an_instance(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    perdure("deploy", cwd=project)
    perdure("workflows", "trigger", WF, "--id", "order-1", "--payload", '{"n": 1}', cwd=project)

    def steer(*args: str) -> dict[str, object]:
        result = perdure("workflows", "instances", *args, "--json", cwd=project)
        assert result.code == 0, result.err
        return dict(result.json)

    paused = steer("pause", WF, "order-1")
    assert paused == {
        "workflow": WF,
        "id": "order-1",
        "status": "paused",
        "output": None,
        "error": None,
    }
    assert steer("resume", WF, "latest")["status"] == "queued"
    human = perdure("workflows", "instances", "terminate", WF, "order-1", cwd=project)
    assert human.code == 0
    assert human.out.strip() == f"Terminated instance order-1 of {WF}; status: terminated"

    refused = perdure("workflows", "instances", "terminate", WF, "order-1", cwd=project)
    assert refused.code == 1
    assert "cannot terminate instance 'order-1'" in refused.err
    assert "restart()" not in refused.err

    assert steer("restart", WF, "order-1")["status"] == "queued"
    worker = start("worker", "--poll-interval", "0.05", cwd=project)
    try:
        done = perdure(
            "workflows",
            "instances",
            "describe",
            WF,
            "order-1",
            "--watch",
            "--interval",
            "0.1",
            "--json",
            cwd=project,
        )
        assert done.code == 0 and done.json["status"] == "complete", done.err
        first_run = {s["name"]: s["start"] for s in done.json["steps"]}

        again = steer("restart", WF, "order-1", "--from-step", "some other step")
        assert again["status"] == "queued"
        redone = perdure(
            "workflows",
            "instances",
            "describe",
            WF,
            "order-1",
            "--watch",
            "--interval",
            "0.1",
            "--json",
            cwd=project,
        ).json
    finally:
        stop(worker)

    assert redone["status"] == "complete"
    second_run = {s["name"]: s["start"] for s in redone["steps"]}
    assert second_run["my first step"] == first_run["my first step"]  # kept
    assert second_run["some other step"] != first_run["some other step"]  # ran again


def test_restart_options_need_a_step(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    perdure("deploy", cwd=project)
    perdure("workflows", "trigger", WF, cwd=project)

    result = perdure("workflows", "instances", "restart", WF, "latest", "--count", "2", cwd=project)
    missing = perdure(
        "workflows", "instances", "restart", WF, "latest", "--from-step", "nope", cwd=project
    )

    assert result.code == 2 and "--count and --type need --from-step" in result.err
    assert missing.code == 2 and "no such step" in missing.err


def test_send_event_delivers_a_payload_to_an_instance(tmp_path: Path) -> None:
    project = new_project(tmp_path, "approvals", template="approval")
    perdure("deploy", cwd=project)
    perdure("workflows", "trigger", "approvals", '{"document": "spring.md"}', cwd=project)

    sent = perdure(
        "workflows",
        "instances",
        "send-event",
        "approvals",
        "latest",
        "--type",
        "approval",
        "--payload",
        '{"approved": true}',
        cwd=project,
    )
    assert sent.code == 0, sent.err
    assert "Sent event 'approval'" in sent.out
    waiting = perdure("workflows", "instances", "describe", "approvals", "--json", cwd=project)
    assert waiting.json["events"][0]["type"] == "approval"
    assert waiting.json["events"][0]["payload"] == {"approved": True}

    worker = start("worker", "--poll-interval", "0.05", cwd=project)
    try:
        done = perdure(
            "workflows",
            "instances",
            "describe",
            "approvals",
            "--watch",
            "--interval",
            "0.1",
            cwd=project,
        )
    finally:
        stop(worker)

    assert done.code == 0, done.err
    assert '{"document": "spring.md", "result": "published"}' in done.out
    assert "Events (1)" in done.out


def test_a_deleted_workflow_refuses_new_instances_until_it_is_deployed_again(
    tmp_path: Path,
) -> None:
    project = new_project(tmp_path)
    perdure("deploy", cwd=project)
    perdure("workflows", "trigger", WF, cwd=project)
    described = perdure("workflows", "describe", WF, "--json", cwd=project).json
    assert described["instances"] == {"queued": 1}

    deleted = perdure("workflows", "delete", WF, cwd=project)
    assert deleted.code == 0 and f"Deleted workflow {WF}" in deleted.out

    refused = perdure("workflows", "trigger", WF, cwd=project)
    assert refused.code == 1
    assert f"unknown workflow '{WF}'" in refused.err and "perdure deploy" in refused.err
    assert perdure("workflows", "list", "--json", cwd=project).json == {"workflows": []}
    assert "No workflows registered" in perdure("workflows", "list", cwd=project).out

    perdure("deploy", cwd=project)
    assert perdure("workflows", "trigger", WF, cwd=project).code == 0
    counts = perdure("workflows", "describe", WF, "--json", cwd=project).json["instances"]
    assert counts == {"queued": 1}  # the old instances went with the delete


def test_instances_are_listed_newest_first_a_page_at_a_time(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    perdure("deploy", cwd=project)
    for n in range(3):
        perdure("workflows", "trigger", WF, "--id", f"i-{n}", cwd=project)

    first = perdure("workflows", "instances", "list", WF, "--limit", "2", "--json", cwd=project)
    cursor = first.json["next_cursor"]
    second = perdure(
        "workflows",
        "instances",
        "list",
        WF,
        "--limit",
        "2",
        "--cursor",
        cursor,
        "--json",
        cwd=project,
    )
    human = perdure("workflows", "instances", "list", WF, "--limit", "2", cwd=project)

    assert [i["id"] for i in first.json["instances"]] == ["i-2", "i-1"]
    assert [i["id"] for i in second.json["instances"]] == ["i-0"]
    assert second.json["next_cursor"] is None
    assert "i-2" in human.out and "queued" in human.out
    assert f"--cursor {cursor}" in human.err
