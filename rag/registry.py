"""One registry per extension point (LLM backends, generators, vector stores, embedders, readers).

A registry maps a name to a `Spec`: where the implementation lives (imported only when used: llama.cpp,
torch or pymilvus are slow or optional imports), whether this configuration can run it, and its
settings section. Configuration checks, CLI choices, API validation and the UI's lists all read the
registry, so a new backend is its module plus one `register` call.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Iterator


@dataclass(frozen=True)
class Spec:
    """One implementation of an extension point."""

    name: str
    target: str  # "package.module:attribute", imported on first use
    description: str
    settings: str = ""  # its settings section, e.g. "llm.openai" ("" when it has none)
    # Whether a configuration (rag.config.Settings) can run it, without loading it; None = always.
    available: Callable[[Any], bool] | None = None
    requires: str = ""  # what to install for it, named in errors

    def load(self) -> Any:
        """The implementation (a class or a factory function)."""
        module, _, attribute = self.target.partition(":")
        return getattr(importlib.import_module(module), attribute)

    def is_available(self, settings: Any) -> bool:
        return self.available is None or bool(self.available(settings))


class Registry:
    """Named specs of one extension point, in registration order."""

    def __init__(self, kind: str, setting: str):
        self.kind = kind  # "LLM backend", "vector store"...
        self.setting = setting  # the setting that picks one, e.g. "llm.backend"
        self._specs: dict[str, Spec] = {}

    def register(self, spec: Spec) -> Spec:
        if spec.name in self._specs:
            raise ValueError(f"{self.kind} {spec.name!r} is registered twice")
        self._specs[spec.name] = spec
        return spec

    def names(self) -> tuple[str, ...]:
        return tuple(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[Spec]:
        return iter(self._specs.values())

    def get(self, name: str) -> Spec:
        """The spec, or an error naming the choices (a ConfigError: the name came from configuration)."""
        if name not in self._specs:
            from rag.config import ConfigError

            raise ConfigError(f"{self.setting}: unknown {self.kind} {name!r}; choose one of {', '.join(self._specs)}")
        return self._specs[name]

    def available(self, settings: Any) -> list[str]:
        """The names this configuration can run."""
        return [spec.name for spec in self if spec.is_available(settings)]
