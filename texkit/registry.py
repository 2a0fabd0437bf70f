"""Plugin discovery and the name -> class/factory tables.

Plugins are distributions that declare modules in the ``texkit`` entry-point group. The
registry loads each entry point, registers the module with pluggy, and calls the
``texkit_register_*`` hooks once per plugin so that it knows which distribution registered
which name. It never lets one broken plugin stop the others: an import failure becomes a
warning naming the distribution (and an entry in `Registry.failures`).

``TEXKIT_PLUGINS`` (comma-separated distribution or entry-point names, empty for none) limits
which plugins load, for tests and reproducible runs; an entry-point name selects one module of a
distribution (e.g. one reward), a distribution name all of its modules.

Every renderer and generator is registered with a pydantic ``Params`` model (derived from the
factory's signature when the plugin gives none), and `Registry.make_renderer` /
`Registry.make_generator` validate options against it exactly as rewards validate theirs.
Two distributions registering the same name disable that name only (with a warning naming both);
everything else they register stays usable.
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
import pydantic

from texkit import hookspecs
from texkit.defaults import install_hint
from texkit.errors import PluginError, UnknownNameError
from texkit.options import options_schema, params_from_signature, validate_options

__all__ = ["Registry", "PluginInfo", "Registered", "get_registry", "reset_registry"]

ENTRY_POINT_GROUP = "texkit"
KINDS = ("rewards", "renderers", "generators", "checks")
FACTORY_KINDS = ("renderers", "generators")


@dataclass
class Registered:
    """One registered thing: its name, the object (a class or a factory) and where it came from.

    Attributes:
        name: the name configs use.
        obj: a reward class, a renderer/generator factory, or a check function.
        distribution: the distribution that registered it.
        params: the ``Params`` model of its options (rewards: ``cls.Params``; factories: the model
            given to ``register`` or derived from the factory's signature; checks: None).
        takes_params: the factory is called with the validated ``Params`` instance (True when the
            plugin registered an explicit model) instead of keyword arguments.
    """

    name: str
    obj: Any
    distribution: str
    params: type[pydantic.BaseModel] | None = None
    takes_params: bool = False


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
        self.conflicts: dict[str, dict[str, list[str]]] = {k: {} for k in KINDS}
        if load_entry_points:
            self._load_entry_points()

    # -- discovery -------------------------------------------------------------------------
    def _load_entry_points(self) -> None:
        allowed_env = os.environ.get("TEXKIT_PLUGINS")
        allowed = None if allowed_env is None else {n.strip() for n in allowed_env.split(",") if n.strip()}
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = ep.dist.name if ep.dist is not None else "unknown"
            version = ep.dist.version if ep.dist is not None else "?"
            if allowed is not None and dist not in allowed and ep.name not in allowed:
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
            hook = getattr(self.manager.hook, f"texkit_register_{kind}", None)
            if hook is None:
                continue
            for impl in hook.get_hookimpls():
                if impl.plugin is plugin:
                    impl.function(register=self._registrar(kind, info))
        self.plugins.append(info)
        return info

    def _registrar(self, kind: str, info: PluginInfo) -> Callable[..., None]:
        def register(name_or_cls: Any, factory: Any = None, params: type[pydantic.BaseModel] | None = None) -> None:
            if kind == "rewards":
                cls = name_or_cls
                name = getattr(cls, "name", "")
                if not name:
                    raise PluginError(f"reward class {cls!r} from '{info.distribution}' has no 'name'")
                entry = Registered(name, cls, info.distribution, getattr(cls, "Params", None))
            else:
                name, obj = name_or_cls, factory
                if not callable(obj):
                    raise PluginError(f"{kind[:-1]} '{name}' from '{info.distribution}' is not callable")
                if kind in FACTORY_KINDS:
                    explicit = params is not None
                    model = params if explicit else params_from_signature(obj, name)
                    entry = Registered(name, obj, info.distribution, model, takes_params=explicit)
                else:
                    entry = Registered(name, obj, info.distribution)
            self._add(kind, entry, info)

        return register

    def _add(self, kind: str, entry: Registered, info: PluginInfo) -> None:
        """Put ``entry`` in its table; a name two distributions claim is disabled with a warning."""
        table, conflicts = self.tables[kind], self.conflicts[kind]
        name = entry.name
        if name in conflicts:
            conflicts[name].append(entry.distribution)
            return
        if name in table and table[name].distribution != entry.distribution:
            first = table.pop(name).distribution
            conflicts[name] = [first, entry.distribution]
            warnings.warn(
                f"{kind[:-1]} '{name}' is registered by both '{first}' and '{entry.distribution}' and is disabled; "
                "uninstall one of them or limit TEXKIT_PLUGINS",
                RuntimeWarning,
                stacklevel=3,
            )
            return
        table[name] = entry
        info.registers[kind].append(name)

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
        if name in self.conflicts[kind]:
            both = "' and '".join(self.conflicts[kind][name])
            raise PluginError(
                f"{kind[:-1]} '{name}' is registered by both '{both}' and is disabled; "
                "uninstall one of them or limit TEXKIT_PLUGINS"
            )
        failed = [f.distribution for f in self.failures]
        if failed:
            broken = f" (plugins that failed to import: {', '.join(sorted(set(failed)))}; `texkit plugins` says why)"
        else:
            broken = ""
        unknown = f"unknown {kind[:-1]} '{name}'{install_hint(kind, name)}"
        if not table and install_hint(kind, name):
            raise UnknownNameError(f"{unknown}; no {kind} are installed{broken}")
        close = difflib.get_close_matches(name, list(table), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        known = ", ".join(sorted(table)) or "none installed"
        raise UnknownNameError(f"{unknown}: {hint}(known: {known}; `texkit plugins` lists them){broken}")

    def reward_class(self, name: str) -> type:
        """The reward class registered as ``name``."""
        return self.get("rewards", name).obj

    def make_reward(self, name: str, params: dict[str, Any] | None = None) -> Any:
        """Instantiate reward ``name`` with validated ``params``."""
        return self.reward_class(name)(params or {})

    def params_model(self, kind: str, name: str) -> type[pydantic.BaseModel] | None:
        """The ``Params`` model of a registered reward, renderer or generator."""
        return self.get(kind, name).params

    def validate(self, kind: str, name: str, options: dict[str, Any] | None) -> pydantic.BaseModel:
        """Options of ``name`` validated against its ``Params`` (one-line ConfigError listing every problem)."""
        entry = self.get(kind, name)
        if entry.params is None:
            raise PluginError(f"{kind[:-1]} '{name}' takes no options")
        return validate_options(entry.params, dict(options or {}), f"{kind[:-1]} '{name}'")

    def _make(self, kind: str, name: str, options: dict[str, Any]) -> Any:
        entry = self.get(kind, name)
        params = self.validate(kind, name, options)
        if entry.takes_params:
            return entry.obj(params)
        kwargs = {k: getattr(params, k) for k in type(params).model_fields}
        kwargs.update(params.model_extra or {})
        return entry.obj(**kwargs)

    def make_renderer(self, name: str, **options: Any) -> Any:
        """Build renderer ``name`` from validated options.

        Raises:
            UnknownNameError: no such renderer. ConfigError: an unknown or invalid option.
        """
        return self._make("renderers", name, options)

    def make_generator(self, name: str, **options: Any) -> Any:
        """Build generator ``name`` from validated options.

        Raises:
            UnknownNameError: no such generator. ConfigError: an unknown or invalid option.
        """
        return self._make("generators", name, options)

    def checks(self) -> list[Registered]:
        """Environment checks registered by plugins (``texkit doctor`` runs them), sorted by name."""
        return [self.tables["checks"][n] for n in sorted(self.tables["checks"])]

    def schemas(self) -> dict[str, dict[str, Any]]:
        """``{kind: {name: JSON schema of its Params}}`` for rewards, renderers and generators."""
        return {
            kind: {name: options_schema(entry.params) for name, entry in sorted(self.tables[kind].items()) if entry.params}
            for kind in ("rewards", *FACTORY_KINDS)
        }

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
