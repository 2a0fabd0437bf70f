"""The pluggy hook specifications: the whole contract between texkit and its plugins.

Each hook hands the plugin a ``register`` callable, so one plugin can register many things
and the specs never change when a plugin grows. A plugin is a module with ``@texkit.hookimpl``
functions and one entry point in the ``texkit`` group of its pyproject::

    [project.entry-points.texkit]
    palette = "texkit_reward_palette.reward"

Plugins can check :data:`HOOKSPEC_VERSION` (``texkit.HOOKSPEC_VERSION``) to know which
contract they run against: the major number changes only when a spec changes incompatibly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

PROJECT_NAME = "texkit"
HOOKSPEC_VERSION = "1.0"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def texkit_register_rewards(register: Callable[[type], None]) -> None:
    """Register reward classes: call ``register(RewardSubclass)`` once per reward.

    The class's ``name`` attribute is the name users write in configs.
    """


@hookspec
def texkit_register_renderers(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Register renderers: ``register(name, factory)`` where ``factory(**options)`` returns a
    :class:`texkit.types.Renderer`."""


@hookspec
def texkit_register_generators(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Register generators: ``register(name, factory)`` where ``factory(**options)`` returns a
    :class:`texkit.types.Generator`."""


@hookspec
def texkit_register_commands(cli: Any) -> None:
    """Add sub-commands to the ``texkit`` command: ``cli`` is the root ``typer.Typer`` app."""
