"""Starter projects: the templates shipped in perdure/cli/templates/<name>/, and rendering them.

A template is a folder of ``*.tmpl`` files (so they are neither imported nor linted as part of
perdure). On rendering, ``.tmpl`` is dropped, ``gitignore`` becomes ``.gitignore``, a folder named
``__package__`` takes the project's package name, and ``{{project_name}}``, ``{{package}}``,
``{{workflow_name}}`` and ``{{perdure_version}}`` are replaced in the text.
"""

from __future__ import annotations

import keyword
import re
import sys
import tomllib
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from .. import __version__, validate
from ..errors import ValidationError

DEFAULT_TEMPLATE = "workflows-starter"
_RESERVED = {"perdure", "starlette", "uvicorn", "httpx", "pytest", "tests", "test", "src", "app"}


@dataclass(frozen=True, slots=True)
class Template:
    name: str
    description: str
    root: Traversable


def templates() -> dict[str, Template]:
    """The templates shipped with perdure, by name."""
    base = resources.files("perdure.cli") / "templates"
    found: dict[str, Template] = {}
    for entry in sorted(base.iterdir(), key=lambda e: e.name):
        meta = entry / "template.toml"
        if not entry.is_dir() or not meta.is_file():
            continue
        description = str(tomllib.loads(meta.read_text(encoding="utf-8")).get("description", ""))
        found[entry.name] = Template(entry.name, description, entry)
    return found


def get_template(name: str) -> Template:
    available = templates()
    if name not in available:
        raise ValidationError(
            f"unknown template {name!r}; choose one of {', '.join(available)} "
            "(`perdure init --list-templates` describes them)"
        )
    return available[name]


def package_name(project: str) -> str:
    """A Python package name for a project name: ``workflows-starter`` -> ``workflows_starter``."""
    name = re.sub(r"[^0-9a-zA-Z_]+", "_", project).strip("_").lower() or "project"
    if name[0].isdigit():
        name = f"project_{name}"
    if keyword.iskeyword(name) or name in _RESERVED or name in sys.stdlib_module_names:
        name = f"{name}_project"
    return name


@dataclass(frozen=True, slots=True)
class Plan:
    """What ``perdure init`` will write."""

    folder: Path
    project: str
    package: str
    workflow: str
    template: Template


def plan(target: str, template: str) -> Plan:
    folder = Path(target).expanduser()
    project = folder.resolve().name
    try:
        validate.workflow_name(project)
    except ValidationError:
        raise ValidationError(
            f"project name {project!r} must be 1 to 64 letters, digits, '-' or '_', not starting "
            "with '-'; it names the folder, the package and the first workflow"
        ) from None
    return Plan(folder, project, package_name(project), project, get_template(template))


def _files(root: Traversable, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    out: list[tuple[tuple[str, ...], str]] = []
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            if entry.name != "__pycache__":
                out.extend(_files(entry, (*prefix, entry.name)))
        elif entry.name.endswith(".tmpl"):
            out.append(((*prefix, entry.name), entry.read_text(encoding="utf-8")))
    return out


def render(p: Plan) -> list[Path]:
    """Write the project; the folder must not exist or must be empty. Returns the files."""
    if p.folder.exists():
        if not p.folder.is_dir():
            raise FileExistsError(f"{p.folder} exists and is not a folder; pick another name")
        if any(p.folder.iterdir()):
            raise FileExistsError(
                f"folder {p.folder} already exists and is not empty; pick another name, or "
                "remove it first"
            )
    values = {
        "project_name": p.project,
        "package": p.package,
        "workflow_name": p.workflow,
        "perdure_version": __version__,
    }
    written: list[Path] = []
    for parts, text in _files(p.template.root):
        names = [p.package if part == "__package__" else part for part in parts]
        names[-1] = names[-1].removesuffix(".tmpl")
        if names[-1] == "gitignore":
            names[-1] = ".gitignore"
        for key, value in values.items():
            text = text.replace("{{" + key + "}}", value)
        path = p.folder.joinpath(*names)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
