"""perdure.toml and the environment -> frozen settings, and the project's code -> an ``App``.

``perdure.toml`` is the counterpart of ``wrangler.toml``::

    name = "workflows-starter"             # optional: the project's name
    main = "src/workflows_starter/app.py"  # the code to load, relative to this file
    database = "perdure.db"                # SQLite file (relative to this file) or postgresql://
    http = "create_http"                   # optional: factory in `main`: (env) -> ASGI app

    [[workflows]]
    name = "workflows-starter"
    binding = "MY_WORKFLOW"
    class_name = "MyWorkflow"
    max_concurrency = 10                   # optional

``PERDURE_DATABASE`` overrides ``database``. Every mistake is a ``ProjectConfigError`` that names
the file, the key and the fix, so the CLI can print it without a traceback.
"""

from __future__ import annotations

import difflib
import importlib
import os
import sys
import tomllib
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from . import validate
from .client.aio import DEFAULT_DATABASE, App
from .entrypoint import WorkflowEntrypoint
from .errors import ConfigError, ValidationError
from .registry import Workflow, default_binding

CONFIG_FILE = "perdure.toml"
TOP_KEYS = ("name", "main", "database", "http", "workflows")
WORKFLOW_KEYS = ("name", "binding", "class_name", "max_concurrency")
_POSTGRES = ("postgresql://", "postgres://")


class ProjectConfigError(ConfigError):
    """A mistake in perdure.toml or in the code it points at; ``file`` and ``key`` locate it."""

    code = "invalid_config"

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None) -> None:
        where = ": ".join(part for part in (file, key) if part)
        super().__init__(f"{where}: {message}" if where else message)
        self.file = file
        self.key = key


@dataclass(frozen=True, slots=True)
class WorkflowConfig:
    """One ``[[workflows]]`` table."""

    name: str
    class_name: str
    binding: str
    max_concurrency: int | None
    key: str  # where it is in the file, for messages: '[[workflows]] #1 (name = "x")'


@dataclass(frozen=True, slots=True)
class Settings:
    """The project as the CLI sees it. ``path`` is None when only a database was given."""

    path: Path | None
    root: Path
    name: str | None
    main: str | None
    database: str
    database_source: str  # "--database", "PERDURE_DATABASE", "perdure.toml" or "default"
    http: str | None
    workflows: tuple[WorkflowConfig, ...]

    @property
    def file(self) -> str:
        return display_path(self.path) if self.path else CONFIG_FILE

    def workflow(self, name: str) -> WorkflowConfig | None:
        return next((w for w in self.workflows if w.name == name), None)


def display_path(path: Path) -> str:
    """``path`` relative to the current folder when it is inside it, for short messages."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def find_config(start: Path | None = None) -> Path | None:
    """The nearest perdure.toml in ``start`` or one of its parents."""
    folder = (start or Path.cwd()).resolve()
    for candidate in (folder, *folder.parents):
        path = candidate / CONFIG_FILE
        if path.is_file():
            return path
    return None


def is_sqlite(url: str) -> bool:
    return not url.startswith(_POSTGRES)


def sqlite_file(url: str) -> Path | None:
    """The file behind a SQLite URL, or None for PostgreSQL and in-memory databases."""
    if not is_sqlite(url):
        return None
    for prefix in ("sqlite:///", "sqlite://"):
        if url.startswith(prefix):
            url = url[len(prefix) :]
            break
    if url in ("", ":memory:") or url.startswith("file:"):
        return None
    return Path(url)


def _resolve_database(url: str, base: Path) -> str:
    """Relative SQLite paths are relative to ``base`` (the folder of perdure.toml)."""
    path = sqlite_file(url)
    if path is None or path.is_absolute():
        return url
    return str((base / path).resolve())


def _suggest(word: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f"did you mean {close[0]!r}? " if close else ""


def load_settings(
    path: Path | None = None,
    *,
    database: str | None = None,
    environ: Mapping[str, str] | None = None,
    required: bool = True,
) -> Settings:
    """Read perdure.toml (``path``, or the nearest one) and apply the overrides.

    ``database`` (the --database option) wins over ``PERDURE_DATABASE``, which wins over the
    file. With ``required=False`` a missing file is fine as long as a database is given.
    """
    env = os.environ if environ is None else environ
    if path is None:
        path = find_config()
    elif not path.is_file():
        raise ProjectConfigError(
            "no such file; pass the path of a perdure.toml, or run `perdure init NAME` to "
            "create a project",
            file=str(path),
        )
    env_database = env.get("PERDURE_DATABASE") or None
    if path is None:
        override = database or env_database
        if required or override is None:
            raise ProjectConfigError(
                f"no {CONFIG_FILE} in {Path.cwd()} or its parents; run `perdure init NAME` to "
                "create a project, run the command inside one, or pass --config PATH"
                + ("" if required else " (or --database URL)")
            )
        cwd = Path.cwd()
        return Settings(
            path=None,
            root=cwd,
            name=None,
            main=None,
            database=_resolve_database(override, cwd),
            database_source="--database" if database else "PERDURE_DATABASE",
            http=None,
            workflows=(),
        )
    return _parse(path.resolve(), database=database, env_database=env_database)


def _parse(path: Path, *, database: str | None, env_database: str | None) -> Settings:
    file = display_path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ProjectConfigError(f"not valid TOML: {exc}; fix the syntax", file=file) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectConfigError(f"cannot read the file: {exc}", file=file) from None

    for key in data:
        if key not in TOP_KEYS:
            raise ProjectConfigError(
                f"unknown key; {_suggest(key, TOP_KEYS)}the keys are {', '.join(TOP_KEYS)}",
                file=file,
                key=key,
            )

    def text(key: str, *, required: bool = False) -> str | None:
        value = data.get(key)
        if value is None:
            if required:
                raise ProjectConfigError(
                    f'missing; add `{key} = "..."` to the file', file=file, key=key
                )
            return None
        if not isinstance(value, str) or not value.strip():
            raise ProjectConfigError(
                f"must be a non-empty string, got {value!r}", file=file, key=key
            )
        return value

    name = text("name")
    main = text("main", required=True)
    http = text("http")
    if http is not None and not http.isidentifier():
        raise ProjectConfigError(
            f'{http!r} must be the name of a function in `main`, such as "create_http"',
            file=file,
            key="http",
        )
    file_database = text("database")
    root = path.parent
    if database:
        url, source = _resolve_database(database, Path.cwd()), "--database"
    elif env_database:
        url, source = _resolve_database(env_database, Path.cwd()), "PERDURE_DATABASE"
    elif file_database:
        url, source = _resolve_database(file_database, root), CONFIG_FILE
    else:
        url, source = _resolve_database(DEFAULT_DATABASE, root), "default"

    return Settings(
        path=path,
        root=root,
        name=name,
        main=main,
        database=url,
        database_source=source,
        http=http,
        workflows=_workflows(data.get("workflows"), file),
    )


def _workflows(raw: Any, file: str) -> tuple[WorkflowConfig, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise ProjectConfigError(
            "must be an array of tables: write each workflow as a `[[workflows]]` section",
            file=file,
            key="workflows",
        )
    found: list[WorkflowConfig] = []
    for index, item in enumerate(raw, start=1):
        label = f'name = "{item["name"]}"' if isinstance(item.get("name"), str) else "no name"
        where = f"[[workflows]] #{index} ({label})"
        for key in item:
            if key not in WORKFLOW_KEYS:
                raise ProjectConfigError(
                    f"unknown key {key!r}; {_suggest(key, WORKFLOW_KEYS)}a workflow takes "
                    f"{', '.join(WORKFLOW_KEYS)}",
                    file=file,
                    key=where,
                )
        for key in ("name", "class_name"):
            if key not in item:
                raise ProjectConfigError(
                    f'`{key}` is missing; add `{key} = "..."`', file=file, key=where
                )
            if not isinstance(item[key], str):
                raise ProjectConfigError(
                    f"`{key}` must be a string, got {item[key]!r}", file=file, key=where
                )
        name = item["name"]
        try:
            validate.workflow_name(name)
        except ValidationError as exc:
            raise ProjectConfigError(f"`name`: {exc}", file=file, key=where) from None
        class_name = item["class_name"]
        if not class_name.replace(".", "_").isidentifier():
            raise ProjectConfigError(
                f"`class_name` {class_name!r} must be the name of a class in `main`, such as "
                '"MyWorkflow"',
                file=file,
                key=where,
            )
        binding = item.get("binding", default_binding(name))
        if not isinstance(binding, str) or not binding.isidentifier():
            raise ProjectConfigError(
                f'`binding` {binding!r} must be a Python identifier, such as "MY_WORKFLOW"',
                file=file,
                key=where,
            )
        limit = item.get("max_concurrency")
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise ProjectConfigError(
                f"`max_concurrency` must be a positive integer, got {limit!r}; remove it for no "
                "limit",
                file=file,
                key=where,
            )
        for other in found:
            if other.name == name:
                raise ProjectConfigError(
                    f"another workflow is named {name!r} too ({other.key.split(' (')[0]}); give "
                    "each workflow its own name",
                    file=file,
                    key=where,
                )
            if other.binding == binding:
                raise ProjectConfigError(
                    f"binding {binding!r} is used by {other.key} too; give each workflow its "
                    "own binding",
                    file=file,
                    key=where,
                )
        found.append(WorkflowConfig(name, class_name, binding, limit, where))
    return tuple(found)


# -- the project's code


def _module_name(settings: Settings) -> tuple[str, list[Path]]:
    """The importable name of ``main`` and the folders to put on sys.path for it."""
    main = settings.main or ""
    root = settings.root
    if main.endswith(".py") or "/" in main or os.sep in main:
        file = (root / main).resolve()
        if not file.is_file():
            raise ProjectConfigError(
                f"{main!r}: no such file {display_path(file)}; give the path of your code, "
                f"relative to the folder of {CONFIG_FILE}",
                file=settings.file,
                key="main",
            )
        parts = [] if file.name == "__init__.py" else [file.stem]
        folder = file.parent
        while (folder / "__init__.py").is_file() and folder != folder.parent:
            parts.insert(0, folder.name)
            folder = folder.parent
        if not parts:
            raise ProjectConfigError(
                f"{main!r} is not inside an importable package", file=settings.file, key="main"
            )
        return ".".join(parts), [folder]
    if not all(part.isidentifier() for part in main.split(".")):
        raise ProjectConfigError(
            f"{main!r} is neither a .py file nor a module name; use a path such as "
            '"src/app.py" or a module such as "app"',
            file=settings.file,
            key="main",
        )
    folders = [root]
    if (root / "src").is_dir():
        folders.append(root / "src")
    return main, folders


def import_main(settings: Settings) -> ModuleType:
    """Import the project's ``main`` module; import failures name the file and line."""
    if settings.path is None or settings.main is None:
        raise ProjectConfigError(
            f"this command runs the project's code, so it needs a {CONFIG_FILE}; run it inside "
            "a project, pass --config PATH, or create one with `perdure init NAME`"
        )
    name, folders = _module_name(settings)
    for folder in reversed(folders):
        entry = str(folder)
        if entry not in sys.path:
            sys.path.insert(0, entry)
    try:
        return importlib.import_module(name)
    except SyntaxError as exc:
        where = f"{display_path(Path(exc.filename))}:{exc.lineno}" if exc.filename else name
        raise ProjectConfigError(
            f"cannot load {settings.main!r}: syntax error at {where}: {exc.msg}; fix the code",
            file=settings.file,
            key="main",
        ) from None
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            raise ProjectConfigError(
                f"cannot find module {name!r}; check the path or the module name",
                file=settings.file,
                key="main",
            ) from None
        raise ProjectConfigError(
            f"loading {settings.main!r} failed{_origin(exc)}: {exc}; install the missing "
            "package or fix the import",
            file=settings.file,
            key="main",
        ) from None
    except Exception as exc:
        raise ProjectConfigError(
            f"loading {settings.main!r} raised {type(exc).__name__}{_origin(exc)}: {exc}",
            file=settings.file,
            key="main",
        ) from None


def _origin(exc: BaseException) -> str:
    """' at file:line' of the deepest frame outside Python's import machinery."""
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if "importlib" not in f.filename and not f.filename.startswith("<")
    ]
    if not frames:
        return ""
    frame = frames[-1]
    return f" at {display_path(Path(frame.filename))}:{frame.lineno}"


def load_workflows(settings: Settings, module: ModuleType) -> list[Workflow]:
    """The ``[[workflows]]`` of ``settings`` as perdure.Workflow, with their classes checked."""
    found: list[Workflow] = []
    for wf in settings.workflows:
        target: Any = module
        for part in wf.class_name.split("."):
            target = getattr(target, part, None)
        if target is None:
            classes = sorted(
                n
                for n, v in vars(module).items()
                if isinstance(v, type)
                and issubclass(v, WorkflowEntrypoint)
                and v is not WorkflowEntrypoint
            )
            hint = f" (it defines {', '.join(classes)})" if classes else ""
            raise ProjectConfigError(
                f"class_name = {wf.class_name!r}: {settings.main} has no such class{hint}; "
                "define it there or fix class_name",
                file=settings.file,
                key=wf.key,
            )
        if not isinstance(target, type):
            raise ProjectConfigError(
                f"class_name = {wf.class_name!r} is a {type(target).__name__}, not a class; "
                "name the WorkflowEntrypoint subclass that defines the workflow",
                file=settings.file,
                key=wf.key,
            )
        if not issubclass(target, WorkflowEntrypoint):
            raise ProjectConfigError(
                f"class_name = {wf.class_name!r} is not a subclass of perdure.WorkflowEntrypoint; "
                f"declare it as `class {target.__name__}(perdure.WorkflowEntrypoint)`",
                file=settings.file,
                key=wf.key,
            )
        found.append(
            Workflow(wf.name, target, binding=wf.binding, max_concurrency=wf.max_concurrency)
        )
    return found


def http_factory(settings: Settings, module: ModuleType) -> Any:
    """The ``http`` factory named in perdure.toml, or None when the project has none."""
    if settings.http is None:
        return None
    factory = getattr(module, settings.http, None)
    if factory is None or not callable(factory):
        raise ProjectConfigError(
            f"{settings.main} has no function {settings.http!r}; define "
            f"`def {settings.http}(env: perdure.Env)` returning an ASGI app, or remove the key",
            file=settings.file,
            key="http",
        )
    return factory


def build_app(settings: Settings, *, register: bool, with_code: bool = True) -> App:
    """An App over the project's database; ``with_code`` imports ``main`` and its classes."""
    workflows: list[Workflow] = []
    if with_code:
        workflows = load_workflows(settings, import_main(settings))
        if not workflows:
            raise ProjectConfigError(
                "no workflows; add a `[[workflows]]` section with name, binding and class_name",
                file=settings.file,
                key="workflows",
            )
    try:
        return App(database=settings.database, workflows=workflows, register=register)
    except ConfigError as exc:
        raise ProjectConfigError(str(exc), file=settings.file) from None


__all__ = [
    "CONFIG_FILE",
    "ProjectConfigError",
    "Settings",
    "WorkflowConfig",
    "build_app",
    "find_config",
    "http_factory",
    "import_main",
    "load_settings",
    "load_workflows",
]
