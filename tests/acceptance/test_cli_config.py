"""perdure.toml: several workflows in one project, and every mistake reported with the file,
the key and the fix (exit code 2, no traceback)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .cli_support import perdure

CODE = """
import perdure


class Greet(perdure.WorkflowEntrypoint):
    async def run(self, event, step):
        return await step.do("greet", lambda: f"hello {event.payload['name']}")


class Count(perdure.WorkflowEntrypoint):
    async def run(self, event, step):
        return await step.do("count", lambda: len(event.payload))


class NotAWorkflow:
    pass
"""

TWO_WORKFLOWS = """
main = "flows.py"

[[workflows]]
name = "greet"
binding = "GREET"
class_name = "Greet"

[[workflows]]
name = "count"
class_name = "Count"
max_concurrency = 5
"""


def project(tmp_path: Path, config: str, code: str = CODE) -> Path:
    (tmp_path / "perdure.toml").write_text(config)
    (tmp_path / "flows.py").write_text(code)
    return tmp_path


def test_several_workflows_in_one_project_each_independent(tmp_path: Path) -> None:
    folder = project(tmp_path, TWO_WORKFLOWS)

    deployed = perdure("deploy", "--json", cwd=folder)

    assert deployed.code == 0, deployed.err
    found = {w["name"]: w for w in deployed.json["workflows"]}
    assert found["greet"]["binding"] == "GREET" and found["greet"]["class_name"] == "flows:Greet"
    assert found["count"]["binding"] == "COUNT"  # from the name, when not given
    assert found["count"]["max_concurrency"] == 5
    assert perdure("workflows", "trigger", "greet", '{"name": "Ada"}', cwd=folder).code == 0
    assert perdure("workflows", "trigger", "count", "[1, 2, 3]", cwd=folder).code == 0
    assert perdure("workflows", "describe", "count", "--json", cwd=folder).json["instances"] == {
        "queued": 1
    }


def test_the_database_setting_is_relative_to_the_config_and_overridden_by_the_environment(
    tmp_path: Path,
) -> None:
    folder = project(tmp_path, 'database = "data/app.db"\n' + TWO_WORKFLOWS)
    (folder / "data").mkdir()
    (folder / "sub").mkdir()

    from_subfolder = perdure("deploy", cwd=folder / "sub")
    overridden = perdure("deploy", "--json", cwd=folder, PERDURE_DATABASE=str(tmp_path / "x.db"))

    assert from_subfolder.code == 0, from_subfolder.err
    assert (folder / "data" / "app.db").exists()
    assert overridden.code == 0 and (tmp_path / "x.db").exists()


@pytest.mark.parametrize(
    ("config", "code", "message"),
    [
        (
            'mian = "flows.py"\n',
            CODE,
            "perdure.toml: mian: unknown key; did you mean 'main'?",
        ),
        (
            TWO_WORKFLOWS.replace('binding = "GREET"', 'bindng = "GREET"'),
            CODE,
            "perdure.toml: [[workflows]] #1 (name = \"greet\"): unknown key 'bindng'; did you mean "
            "'binding'?",
        ),
        (
            TWO_WORKFLOWS.replace('class_name = "Count"', 'class_name = "Counter"'),
            CODE,
            "perdure.toml: [[workflows]] #2 (name = \"count\"): class_name = 'Counter': flows.py "
            "has no such class (it defines Count, Greet); define it there or fix class_name",
        ),
        (
            TWO_WORKFLOWS.replace('class_name = "Count"', 'class_name = "NotAWorkflow"'),
            CODE,
            "class_name = 'NotAWorkflow' is not a subclass of perdure.WorkflowEntrypoint; "
            "declare it as `class NotAWorkflow(perdure.WorkflowEntrypoint)`",
        ),
        (
            TWO_WORKFLOWS.replace('name = "count"', 'name = "greet"'),
            CODE,
            "perdure.toml: [[workflows]] #2 (name = \"greet\"): another workflow is named 'greet' "
            "too ([[workflows]] #1); give each workflow its own name",
        ),
        (
            TWO_WORKFLOWS.replace(
                'class_name = "Count"', 'class_name = "Count"\nbinding = "GREET"'
            ),
            CODE,
            "binding 'GREET' is used by [[workflows]] #1 (name = \"greet\") too",
        ),
        (
            TWO_WORKFLOWS.replace("max_concurrency = 5", "max_concurrency = 0"),
            CODE,
            "`max_concurrency` must be a positive integer, got 0",
        ),
        (
            TWO_WORKFLOWS.replace('name = "count"', 'name = "two words"'),
            CODE,
            "`name`: invalid workflow name 'two words'",
        ),
        (
            TWO_WORKFLOWS.replace('main = "flows.py"', ""),
            CODE,
            'perdure.toml: main: missing; add `main = "..."` to the file',
        ),
        (
            TWO_WORKFLOWS.replace('main = "flows.py"', 'main = "src/missing.py"'),
            CODE,
            "perdure.toml: main: 'src/missing.py': no such file src/missing.py",
        ),
        (
            TWO_WORKFLOWS + "\n[workflows\n",
            CODE,
            "perdure.toml: not valid TOML: ",
        ),
        (
            TWO_WORKFLOWS,
            CODE + "\ndef broken(:\n",
            "perdure.toml: main: cannot load 'flows.py': syntax error at flows.py:18",
        ),
        (
            TWO_WORKFLOWS,
            "import not_installed_anywhere\n" + CODE,
            "loading 'flows.py' failed at flows.py:1: No module named 'not_installed_anywhere'",
        ),
        (
            TWO_WORKFLOWS,
            CODE + "\nraise RuntimeError('no config for you')\n",
            "loading 'flows.py' raised RuntimeError at flows.py:18: no config for you",
        ),
        (
            'main = "flows.py"\n',
            CODE,
            "perdure.toml: workflows: no workflows; add a `[[workflows]]` section",
        ),
    ],
    ids=[
        "unknown-key",
        "unknown-workflow-key",
        "missing-class",
        "not-an-entrypoint",
        "duplicate-name",
        "duplicate-binding",
        "bad-max-concurrency",
        "bad-name",
        "no-main",
        "main-not-found",
        "toml-syntax",
        "code-syntax",
        "code-import-error",
        "code-raises",
        "no-workflows",
    ],
)
def test_each_mistake_names_the_file_the_key_and_the_fix(
    tmp_path: Path, config: str, code: str, message: str
) -> None:
    folder = project(tmp_path, config, code)

    result = perdure("deploy", cwd=folder)

    assert result.code == 2, result.out + result.err
    assert message in result.err
    assert not (folder / "perdure.db").exists()


def test_the_http_key_must_name_a_function_of_main(tmp_path: Path) -> None:
    folder = project(tmp_path, 'http = "make_app"\n' + TWO_WORKFLOWS)

    result = perdure("dev", "--no-reload", "--port", "0", cwd=folder)

    assert result.code == 2
    assert "perdure.toml: http: flows.py has no function 'make_app'" in result.err
