"""Workflow name -> class, binding and a version hash of its code."""

from __future__ import annotations

import hashlib
import importlib
import inspect
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from . import validate
from .entrypoint import WorkflowEntrypoint
from .errors import ConfigError, WorkflowNotFoundError

_BINDING = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class Workflow:
    """A workflow to register: ``Workflow("onboarding", Onboarding, binding="ONBOARDING")``."""

    name: str
    cls: type[WorkflowEntrypoint]
    binding: str | None = None
    max_concurrency: int | None = None


@dataclass(frozen=True, slots=True)
class WorkflowSpec:
    name: str
    cls: type[WorkflowEntrypoint]
    binding: str
    class_path: str
    version: str
    max_concurrency: int | None


def default_binding(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name).upper()


def code_version(cls: type) -> str:
    """A short hash of the source of the module that defines ``cls``."""
    try:
        module = inspect.getmodule(cls)
        source = inspect.getsource(module) if module else inspect.getsource(cls)
    except (OSError, TypeError):
        source = f"{cls.__module__}:{cls.__qualname__}"
    return hashlib.sha256(source.encode()).hexdigest()[:12]


def load_class(path: str) -> type:
    """Import ``"package.module:ClassName"``."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"class path {path!r} must look like 'package.module:ClassName'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import module {module_name!r} for {path!r}: {exc}") from exc
    try:
        found = getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"module {module_name!r} has no class {attr!r}") from None
    if not isinstance(found, type):
        raise ConfigError(f"{path!r} is not a class")
    return found


class Registry:
    def __init__(
        self,
        workflows: Mapping[str, type[WorkflowEntrypoint]] | Iterable[Workflow] | None = None,
    ) -> None:
        self._specs: dict[str, WorkflowSpec] = {}
        if workflows is None:
            return
        items: Iterable[Workflow]
        if isinstance(workflows, Mapping):
            items = [Workflow(name, cls) for name, cls in workflows.items()]
        else:
            items = workflows
        for item in items:
            if not isinstance(item, Workflow):
                raise ConfigError(
                    "workflows must be a mapping of name to class, or a list of perdure.Workflow"
                )
            self.add(item)

    def add(self, item: Workflow) -> WorkflowSpec:
        name = validate.workflow_name(item.name)
        if name in self._specs:
            raise ConfigError(
                f"workflow {name!r} is registered twice; give each workflow its own name"
            )
        cls = item.cls
        if not (isinstance(cls, type) and issubclass(cls, WorkflowEntrypoint)):
            raise ConfigError(
                f"workflow {name!r}: {cls!r} is not a subclass of perdure.WorkflowEntrypoint"
            )
        if cls.run is WorkflowEntrypoint.run or not inspect.iscoroutinefunction(cls.run):
            raise ConfigError(
                f"workflow {name!r}: {cls.__name__} must define async def run(self, event, step)"
            )
        binding = item.binding or default_binding(name)
        if not _BINDING.match(binding):
            raise ConfigError(f"workflow {name!r}: binding {binding!r} must be a Python identifier")
        if any(spec.binding == binding for spec in self._specs.values()):
            raise ConfigError(f"binding {binding!r} is used by two workflows; give each its own")
        limit = item.max_concurrency
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise ConfigError(f"workflow {name!r}: max_concurrency must be a positive integer")
        spec = WorkflowSpec(
            name=name,
            cls=cls,
            binding=binding,
            class_path=f"{cls.__module__}:{cls.__qualname__}",
            version=code_version(cls),
            max_concurrency=limit,
        )
        self._specs[name] = spec
        return spec

    def get(self, name: str) -> WorkflowSpec:
        try:
            return self._specs[name]
        except KeyError:
            known = ", ".join(sorted(self._specs)) or "none"
            raise WorkflowNotFoundError(f"unknown workflow {name!r}; registered: {known}") from None

    def find(self, name: str) -> WorkflowSpec | None:
        return self._specs.get(name)

    def by_binding(self, binding: str) -> WorkflowSpec | None:
        return next((s for s in self._specs.values() if s.binding == binding), None)

    def names(self) -> list[str]:
        return sorted(self._specs)

    def specs(self) -> list[WorkflowSpec]:
        return [self._specs[name] for name in sorted(self._specs)]
