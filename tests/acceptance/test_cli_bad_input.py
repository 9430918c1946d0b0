"""Every kind of bad input gets a one-line message that says what to do, the right exit code,
and never a traceback: 1 when the operation failed, 2 when the input was wrong."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from perdure.cli.main import cli

from .cli_support import new_project, perdure

WF = "workflows-starter"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A deployed starter project with one instance, id 'taken'."""
    project = new_project(tmp_path_factory.mktemp("bad-input"))
    assert perdure("deploy", cwd=project).code == 0
    assert perdure("workflows", "trigger", WF, "--id", "taken", cwd=project).code == 0
    return project


def run(project: Path, *args: str, input: str | None = None) -> Result:
    """The command in-process (fast); no traceback may escape it."""
    result = CliRunner().invoke(
        cli,
        ["--config", str(project / "perdure.toml"), *args],
        input=input,
        env={"PERDURE_DATABASE": None, "PERDURE_CONFIG": None, "NO_COLOR": None},
        catch_exceptions=False,
    )
    assert "Traceback" not in result.output
    return result


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["workflows", "trigger", "nope"],
            "unknown workflow 'nope' (registered: workflows-starter)",
        ),
        (["workflows", "describe", "nope"], "unknown workflow 'nope'"),
        (["workflows", "delete", "nope"], "unknown workflow 'nope'"),
        (["workflows", "instances", "list", "nope"], "unknown workflow 'nope'"),
        (
            ["workflows", "instances", "describe", WF, "nope"],
            f"no instance 'nope' in workflow '{WF}'",
        ),
        (["workflows", "instances", "pause", WF, "nope"], "no instance 'nope'"),
        (["workflows", "instances", "describe", "nope", "latest"], "unknown workflow 'nope'"),
        (
            ["workflows", "trigger", WF, "--id", "taken"],
            "an instance with id 'taken' already exists",
        ),
    ],
)
def test_what_does_not_exist_or_is_taken_fails_with_exit_code_1(
    project: Path, args: list[str], message: str
) -> None:
    result = run(project, *args)

    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ")
    assert message in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["workflows", "trigger", WF, "{bad"], "the payload is not valid JSON: Expecting property"),
        (["workflows", "trigger", WF, "--payload", '{"a": 1,}'], "at line 1, column 9"),
        (["workflows", "trigger", WF, "{}", "--payload", "{}"], "either as PARAMS or as --payload"),
        (["workflows", "trigger", WF, "--id", "no/slashes"], "invalid instance id 'no/slashes'"),
        (["workflows", "trigger", "bad name!"], "invalid workflow name 'bad name!'"),
        (
            ["workflows", "instances", "send-event", WF, "taken", "--type", "a.b"],
            "must not contain '.'",
        ),
        (
            ["workflows", "instances", "send-event", WF, "taken", "--type", "t", "--payload", "["],
            "the event payload is not valid JSON",
        ),
        (["workflows", "instances", "list", WF, "--cursor", "zzz"], "invalid cursor 'zzz'"),
        (["workflows", "instances", "list", WF, "--status", "done"], "'done' is not one of"),
        (["workflows", "instances", "restart", WF, "taken", "--type", "sleep"], "need --from-step"),
        (["workflows", "instances", "describe"], "Missing argument 'NAME'"),
        (
            ["init", "x", "--template", "nope"],
            "unknown template 'nope'; choose one of approval, workflows-starter",
        ),
        (["init"], "missing the project NAME"),
        (["frobnicate"], "No such command 'frobnicate'"),
    ],
)
def test_wrong_input_is_a_usage_error_with_exit_code_2(
    project: Path, args: list[str], message: str
) -> None:
    result = run(project, *args)

    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_a_malformed_multiline_payload_file_says_where_the_mistake_is(
    project: Path, tmp_path: Path
) -> None:
    payload = tmp_path / "order.json"
    payload.write_text('{\n  "items": [1, 2],\n  "total": 3\n  "currency": "EUR"\n}\n')

    result = run(project, "workflows", "trigger", WF, "--payload", f"@{payload}")

    assert result.exit_code == 2
    assert "Expecting ',' delimiter at line 4, column 3" in result.stderr
    assert str(payload) in result.stderr


def test_a_payload_over_one_mebibyte_is_refused(project: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"blob": "x" * (1024 * 1024)}))

    from_file = run(project, "workflows", "trigger", WF, "--payload", f"@{big}", "--json")
    from_stdin = run(project, "workflows", "trigger", WF, "--payload", "-", input=big.read_text())

    assert from_file.exit_code == 2
    error = json.loads(from_file.stderr)["error"]
    assert error["code"] == "payload_too_large"
    assert "over the limit of 1,048,576 bytes" in error["message"]
    assert from_stdin.exit_code == 2 and "over the limit" in from_stdin.stderr


def test_a_payload_can_come_from_a_file_or_stdin(project: Path, tmp_path: Path) -> None:
    order = tmp_path / "order.json"
    order.write_text('{"order": 42}')

    from_file = run(project, "workflows", "trigger", WF, "--payload", f"@{order}", "--json")
    from_stdin = run(project, "workflows", "trigger", WF, "--payload", "-", input='{"order": 43}')

    assert from_file.exit_code == 0 and from_file.stdout
    assert from_stdin.exit_code == 0
    described = run(project, "workflows", "instances", "describe", WF, "latest", "--json")
    assert json.loads(described.stdout)["params"] == {"order": 43}


def test_errors_are_json_objects_on_stderr_with_json(project: Path) -> None:
    result = run(project, "workflows", "instances", "describe", WF, "nope", "--json")

    assert result.exit_code == 1
    assert result.stdout == ""
    assert json.loads(result.stderr) == {
        "error": {
            "code": "instance_not_found",
            "message": f"no instance 'nope' in workflow '{WF}'",
        }
    }


def test_latest_on_a_workflow_without_instances(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    perdure("deploy", cwd=project)

    result = perdure("workflows", "instances", "describe", WF, "latest", cwd=project)

    assert result.code == 1
    assert f"workflow '{WF}' has no instances yet" in result.err


def test_a_missing_database_is_reported_and_not_created(tmp_path: Path) -> None:
    project = new_project(tmp_path)

    for args in (
        ["workflows", "list"],
        ["workflows", "trigger", WF],
        ["workflows", "instances", "describe", WF, "latest"],
        ["serve"],
    ):
        result = perdure(*args, cwd=project)
        assert result.code == 1, args
        assert "database perdure.db does not exist (from perdure.toml)" in result.err
        assert "run `perdure deploy`" in result.err

    elsewhere = perdure("workflows", "list", cwd=tmp_path, PERDURE_DATABASE="gone.db")
    assert elsewhere.code == 1 and "gone.db does not exist (from PERDURE_DATABASE)" in elsewhere.err
    assert not (project / "perdure.db").exists() and not (tmp_path / "gone.db").exists()


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    (tmp_path / "notes.db").write_text("these are not the tables you are looking for" * 100)

    result = perdure("workflows", "list", cwd=tmp_path, PERDURE_DATABASE="notes.db")

    assert result.code == 1
    assert "not a database" in result.err


@pytest.fixture
def locked(project: Path) -> Iterator[Path]:
    """Another process holds a write transaction on a copy of the project's database."""
    copy = project.parent / "locked.db"
    source = sqlite3.connect(project / "perdure.db")
    target = sqlite3.connect(copy)
    source.backup(target)
    source.close()
    target.close()
    lock = sqlite3.connect(copy, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        yield copy
    finally:
        lock.execute("ROLLBACK")
        lock.close()


def test_a_locked_database_is_reported_after_the_busy_timeout(locked: Path) -> None:
    result = perdure("workflows", "trigger", WF, cwd=locked.parent, PERDURE_DATABASE=str(locked))

    assert result.code == 1
    assert "the database is locked by another process" in result.err


def test_serving_beyond_loopback_needs_a_token(project: Path) -> None:
    result = perdure("serve", "--host", "0.0.0.0", cwd=project)
    dev = perdure("dev", "--host", "0.0.0.0", "--no-reload", cwd=project)

    assert result.code == 2
    assert "refusing to serve on 0.0.0.0 without a token" in result.err
    assert dev.code == 2 and "without a token" in dev.err


def test_init_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")

    result = perdure("init", "busy", cwd=tmp_path)

    assert result.code == 2
    assert "already exists and is not empty" in result.err
    assert sorted(p.name for p in (tmp_path / "busy").iterdir()) == ["notes.txt"]


def test_outside_a_project_the_commands_say_how_to_start_one(tmp_path: Path) -> None:
    result = perdure("workflows", "list", cwd=tmp_path)
    deploy = perdure("deploy", cwd=tmp_path)

    assert result.code == 2
    assert "no perdure.toml in" in result.err and "perdure init NAME" in result.err
    assert deploy.code == 2 and "perdure init NAME" in deploy.err
