"""A new user's path through the `perdure` command, step by step, as in the getting-started guide."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .cli_support import new_project, perdure, start, stop, wait_for

WF = "workflows-starter"
RETRIED = "make a call to write that could maybe, just might, fail"


def test_init_creates_a_starter_project_with_its_config_readme_and_tests(tmp_path: Path) -> None:
    result = perdure("init", WF, cwd=tmp_path)

    assert result.code == 0, result.err
    project = tmp_path / WF
    for file in (
        "perdure.toml",
        "README.md",
        "pyproject.toml",
        ".gitignore",
        "src/workflows_starter/app.py",
        "tests/test_app.py",
    ):
        assert (project / file).is_file(), file
    config = (project / "perdure.toml").read_text()
    assert 'name = "workflows-starter"' in config
    assert 'binding = "MY_WORKFLOW"' in config
    assert 'class_name = "MyWorkflow"' in config
    assert "perdure dev" in result.out
    assert "{{" not in (project / "src/workflows_starter/app.py").read_text()


def test_templates_are_listed_and_chosen_by_name(tmp_path: Path) -> None:
    listed = perdure("init", "--template", "list", cwd=tmp_path)
    as_json = perdure("init", "--list-templates", "--json", cwd=tmp_path)
    chosen = perdure("init", "approvals", "--template", "approval", cwd=tmp_path)

    assert listed.code == 0 and "workflows-starter (default)" in listed.out
    assert "approval" in listed.out
    defaults = {t["name"]: t["default"] for t in as_json.json["templates"]}
    assert defaults == {"workflows-starter": True, "approval": False}
    assert chosen.code == 0, chosen.err
    assert 'class_name = "ApprovalWorkflow"' in (tmp_path / "approvals/perdure.toml").read_text()


@pytest.mark.parametrize("template", ["workflows-starter", "approval"])
def test_the_starter_projects_own_tests_pass_in_its_folder(tmp_path: Path, template: str) -> None:
    perdure("init", "my-project", "--template", template, cwd=tmp_path)

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-W",
            "error",
            "-p",
            "no:asyncio",
            "-p",
            "no:cacheprovider",
        ],
        cwd=tmp_path / "my-project",
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert " passed" in done.stdout


def test_deploy_trigger_run_and_describe_an_instance(tmp_path: Path) -> None:
    project = new_project(tmp_path)

    # deploy registers the workflow with a version, and creates the database
    deployed = perdure("deploy", cwd=project)
    assert deployed.code == 0, deployed.err
    assert "new" in deployed.out and (project / "perdure.db").exists()
    again = perdure("deploy", "--json", cwd=project).json
    assert again["workflows"][0]["change"] == "unchanged"
    listed = perdure("workflows", "list", "--json", cwd=project).json["workflows"]
    assert [(w["name"], w["binding"], w["class_name"]) for w in listed] == [
        (WF, "MY_WORKFLOW", "workflows_starter.app:MyWorkflow")
    ]
    assert listed[0]["version"] == again["workflows"][0]["version"]
    human_list = perdure("workflows", "list", cwd=project).out
    assert "NAME" in human_list and "MY_WORKFLOW" in human_list

    # trigger prints the id, and nothing else on stdout
    triggered = perdure("workflows", "trigger", WF, '{"email": "ada@example.com"}', cwd=project)
    assert triggered.code == 0, triggered.err
    instance_id = triggered.out.strip()
    assert len(instance_id) == 36 and "describe" in triggered.err

    worker = start("worker", "--poll-interval", "0.05", cwd=project)
    try:
        watched = perdure(
            "workflows",
            "instances",
            "describe",
            WF,
            "latest",
            "--watch",
            "--interval",
            "0.1",
            cwd=project,
        )
    finally:
        code, worker_log = stop(worker)
    assert code == 0 and "stopped" in worker_log, worker_log
    assert watched.code == 0, watched.err
    assert "4 steps done" in watched.err

    human = perdure("workflows", "instances", "describe", WF, "latest", cwd=project)
    assert human.code == 0
    out = human.out
    assert instance_id in out
    assert "Status    complete" in out
    assert 'Output    {"files": 8, "written": 8}' in out
    assert 'Params    {"email": "ada@example.com"}' in out
    for name in ("my first step", "some other step", "wait on something", RETRIED):
        assert name in out
    assert "sleep" in out and "woke" in out
    assert "ConnectionError: the storage service did not answer" in out
    assert '{"written": 8, "attempts": 2}' in out

    details = perdure(
        "workflows", "instances", "describe", WF, "latest", "--json", cwd=project
    ).json
    assert details["id"] == instance_id and details["status"] == "complete"
    assert details["params"] == {"email": "ada@example.com"}
    assert details["output"] == {"files": 8, "written": 8}
    assert details["version"] == listed[0]["version"]
    assert [(s["name"], s["type"], s["status"]) for s in details["steps"]] == [
        ("my first step", "do", "success"),
        ("some other step", "do", "success"),
        ("wait on something", "sleep", "success"),
        (RETRIED, "do", "success"),
    ]
    assert details["steps"][2]["wake_at"] is not None
    first, second = details["steps"][3]["attempts"]
    assert first["error"]["name"] == "ConnectionError" and first["success"] is False
    assert second["success"] is True
    assert details["steps"][0]["output"]["input_params"] == {"email": "ada@example.com"}

    listing = perdure("workflows", "instances", "list", WF, "--json", cwd=project).json
    assert [i["id"] for i in listing["instances"]] == [instance_id]
    assert listing["next_cursor"] is None
    errored = perdure("workflows", "instances", "list", WF, "--status", "errored", cwd=project)
    assert errored.code == 0 and "No errored instances" in errored.out


def test_describe_shows_a_sleeping_step_and_when_it_wakes_up(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    app = project / "src/workflows_starter/app.py"
    app.write_text(app.read_text().replace("sleep_for: str | float = 0.3", 'sleep_for = "1 hour"'))
    perdure("deploy", cwd=project)
    perdure("workflows", "trigger", WF, cwd=project)

    worker = start("worker", "--poll-interval", "0.05", cwd=project)
    try:

        def sleeping() -> bool:
            found = perdure("workflows", "instances", "describe", WF, "--json", cwd=project)
            return found.json["status"] == "waiting"

        wait_for(sleeping, timeout=15, interval=0.1)
        human = perdure("workflows", "instances", "describe", WF, cwd=project).out
    finally:
        stop(worker)

    assert "Status    waiting" in human
    assert "sleeping" in human and "wakes" in human and "(in 59m" in human
    assert "Steps (3, 2 done)" in human


def test_python_dash_m_perdure_is_the_same_command(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "perdure", "--version"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0 and "perdure, version" in done.stdout
