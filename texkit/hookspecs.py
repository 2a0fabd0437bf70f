"""The pluggy hook specifications: the whole contract between texkit and its plugins.

Each hook hands the plugin a ``register`` callable, so one plugin can register many things
and the specs never change when a plugin grows. A plugin is a module with ``@texkit.hookimpl``
functions and one entry point in the ``texkit`` group of its pyproject::

    [project.entry-points.texkit]
    palette = "texkit_reward_palette.reward"

Plugins can check `HOOKSPEC_VERSION` (``texkit.HOOKSPEC_VERSION``) to know which
contract they run against: the major number changes only when a spec changes incompatibly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

PROJECT_NAME = "texkit"
HOOKSPEC_VERSION = "1.1"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def texkit_register_rewards(register: Callable[[type], None]) -> None:
    """Register reward classes: call ``register(RewardSubclass)`` once per reward.

    The class's ``name`` attribute is the name users write in configs.
    """


@hookspec
def texkit_register_renderers(register: Callable[..., None]) -> None:
    """Register renderers: ``register(name, factory, Params)``.

    ``Params`` is a pydantic model of the renderer's options (``extra="forbid"``); the registry
    validates the config's options against it and calls ``factory(params)`` with the instance.
    Without ``Params`` the model is derived from the factory's keyword arguments and the factory
    is called as ``factory(**options)``. The factory returns a `texkit.Renderer`.
    """


@hookspec
def texkit_register_generators(register: Callable[..., None]) -> None:
    """Register generators: ``register(name, factory, Params)``, validated like renderers.

    The factory returns a `texkit.Generator`. Options the run owns (``device``, ``dtype``,
    ``truncation``, ``checkpointing``, ``batch_size``) are set from the run config's ``device`` and
    ``training`` sections when ``Params`` declares them; a config that also sets them under
    ``generator.options`` is refused, so each is set in one place.
    """


@hookspec
def texkit_register_checks(register: Callable[[str, Callable[[], Any]], None]) -> None:
    """Register environment checks for ``texkit doctor``: ``register(name, check)``.

    ``check()`` returns a `texkit.EnvironmentCheck` (name, ok, detail, fix) and never raises
    (as pytest's ``pytest_report_header`` lets plugins add lines to the session header).
    """


@hookspec
def texkit_register_commands(cli: Any) -> None:
    """Add sub-commands to the ``texkit`` command: ``cli`` is the root ``typer.Typer`` app."""
