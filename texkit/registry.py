"""Plugin discovery and the name -> class/factory tables.

Plugins are distributions that declare modules in the ``texkit`` entry-point group. The
registry loads each entry point, registers the module with pluggy, and calls the
``texkit_register_*`` hooks once per plugin so that it knows which distribution registered
which name. It never lets one broken plugin stop the others: an import failure becomes a
warning naming the distribution (and an entry in :attr:`Registry.failures`).

``TEXKIT_PLUGINS`` (comma-separated distribution names, empty for none) limits which
distributions load, for tests and reproducible runs.
"""

from __future__ import annotations

import difflib
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy

from texkit import hookspecs
from texkit.errors import PluginError, UnknownNameError

__all__ = ["Registry", "PluginInfo", "Registered", "get_registry", "reset_registry"]

ENTRY_POINT_GROUP = "texkit"
KINDS = ("rewards", "renderers", "generators")


@dataclass
class Registered:
    """One registered thing: its name, the object (a class or a factory) and where it came from."""

    name: str
    obj: Any
    distribution: str


@dataclass
class PluginInfo:
    """One loaded plugin module and what it registered."""

    entry_point: str
    module: str
    distribution: str
    version: str
    registers: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in KINDS})
    error: str | None = None


class Registry:
    """The plugin manager plus name tables for rewards, renderers and generators."""

    def __init__(self, load_entry_points: bool = True) -> None:
        self.manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.manager.add_hookspecs(hookspecs)
        self.plugins: list[PluginInfo] = []
        self.failures: list[PluginInfo] = []
        self.tables: dict[str, dict[str, Registered]] = {k: {} for k in KINDS}
        if load_entry_points:
            self._load_entry_points()

    # -- discovery -------------------------------------------------------------------------
    def _load_entry_points(self) -> None:
        allowed_env = os.environ.get("TEXKIT_PLUGINS")
        allowed = None if allowed_env is None else {n.strip() for n in allowed_env.split(",") if n.strip()}
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = ep.dist.name if ep.dist is not None else "unknown"
            version = ep.dist.version if ep.dist is not None else "?"
            if allowed is not None and dist not in allowed:
                continue
            try:
                module = ep.load()
            except Exception as err:  # a broken plugin must not stop the others
                info = PluginInfo(ep.name, ep.value, dist, version, error=f"{type(err).__name__}: {err}")
                self.failures.append(info)
                warnings.warn(
                    f"texkit plugin '{ep.name}' from distribution '{dist}' failed to import and was skipped: "
                    f"{info.error}",
                    RuntimeWarning,
                    stacklevel=2,
                )
                continue
            self.register_plugin(module, distribution=dist, version=version, entry_point=ep.name)

    def register_plugin(
        self,
        plugin: ModuleType | object,
        distribution: str = "local",
        version: str = "0",
        entry_point: str | None = None,
    ) -> PluginInfo:
        """Register a plugin object (a module or class with hookimpls) and collect what it registers.

        Raises:
            PluginError: when a name it registers is already registered by another distribution.
        """
        name = entry_point or getattr(plugin, "__name__", repr(plugin))
        if self.manager.is_registered(plugin):
            raise PluginError(f"plugin '{name}' is registered twice")
        self.manager.register(plugin, name=f"{distribution}:{name}")
        info = PluginInfo(name, getattr(plugin, "__name__", repr(plugin)), distribution, version)
        for kind in KINDS:
            hook = getattr(self.manager.hook, f"texkit_register_{kind}")
            for impl in hook.get_hookimpls():
                if impl.plugin is plugin:
                    impl.function(register=self._registrar(kind, info))
        self.plugins.append(info)
        return info

    def _registrar(self, kind: str, info: PluginInfo) -> Callable[..., None]:
        def register(name_or_cls: Any, factory: Any = None) -> None:
            if kind == "rewards":
                cls = name_or_cls
                name = getattr(cls, "name", "")
                if not name:
                    raise PluginError(f"reward class {cls!r} from '{info.distribution}' has no 'name'")
                obj = cls
            else:
                name, obj = name_or_cls, factory
                if not callable(obj):
                    raise PluginError(f"{kind[:-1]} '{name}' from '{info.distribution}' is not callable")
            table = self.tables[kind]
            if name in table and table[name].distribution != info.distribution:
                raise PluginError(
                    f"{kind[:-1]} '{name}' is registered by both '{table[name].distribution}' and "
                    f"'{info.distribution}'; uninstall one of them or limit TEXKIT_PLUGINS"
                )
            table[name] = Registered(name, obj, info.distribution)
            info.registers[kind].append(name)

        return register

    def add_commands(self, cli: Any) -> None:
        """Let plugins add sub-commands to the root typer app."""
        self.manager.hook.texkit_register_commands(cli=cli)

    # -- lookup ----------------------------------------------------------------------------
    def get(self, kind: str, name: str) -> Registered:
        """Look a name up in one table.

        Raises:
            UnknownNameError: naming the closest valid names.
        """
        table = self.tables[kind]
        if name in table:
            return table[name]
        close = difflib.get_close_matches(name, list(table), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        known = ", ".join(sorted(table)) or "none installed"
        raise UnknownNameError(f"unknown {kind[:-1]} '{name}': {hint}(known: {known}; `texkit plugins` lists them)")

    def reward_class(self, name: str) -> type:
        """The reward class registered as ``name``."""
        return self.get("rewards", name).obj

    def make_reward(self, name: str, params: dict[str, Any] | None = None) -> Any:
        """Instantiate reward ``name`` with validated ``params``."""
        return self.reward_class(name)(params or {})

    def make_renderer(self, name: str, **options: Any) -> Any:
        """Build renderer ``name`` with its factory options."""
        return self.get("renderers", name).obj(**options)

    def make_generator(self, name: str, **options: Any) -> Any:
        """Build generator ``name`` with its factory options."""
        return self.get("generators", name).obj(**options)

    def names(self, kind: str) -> list[str]:
        """Sorted registered names of one kind."""
        return sorted(self.tables[kind])

    def versions(self) -> dict[str, str]:
        """``{distribution: version}`` of every loaded plugin, for run records."""
        return {p.distribution: p.version for p in self.plugins}


_REGISTRY: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, built on first use."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = Registry()
    return _REGISTRY


def reset_registry() -> None:
    """Forget the process-wide registry (tests; after installing a plugin at run time)."""
    global _REGISTRY
    _REGISTRY = None
