"""Contract stability: public names never disappear, and the hook-spec version is well formed.

Adding a name to ``texkit.__all__`` is fine (add it here too); removing or renaming one breaks
third-party plugins and needs a major ``HOOKSPEC_VERSION`` bump and a deprecation period.
"""

from __future__ import annotations

import re

import pytest

import texkit

#: The public API as of HOOKSPEC_VERSION 1.0. Only ever append to this list.
FROZEN_PUBLIC_NAMES = (
    "CAMERA_PRESETS",
    "Cameras",
    "ConfigError",
    "DeviceError",
    "Generator",
    "GeometryCache",
    "HOOKSPEC_VERSION",
    "Mesh",
    "MeshError",
    "PluginError",
    "PromptEmbedding",
    "Registry",
    "RenderOutput",
    "Renderer",
    "Reward",
    "RewardContext",
    "RewardError",
    "RewardOutput",
    "TexkitError",
    "Texture",
    "UnknownNameError",
    "WeightsError",
    "__version__",
    "get_registry",
    "hookimpl",
    "sample_texture",
)


@pytest.mark.parametrize("name", FROZEN_PUBLIC_NAMES)
def test_public_name_is_still_exported(name):
    assert name in texkit.__all__, f"'{name}' was removed from texkit.__all__: plugins rely on it"
    assert hasattr(texkit, name), f"texkit.{name} is listed but not importable"


def test_every_listed_name_exists_and_is_unique():
    assert len(set(texkit.__all__)) == len(texkit.__all__)
    missing = [name for name in texkit.__all__ if not hasattr(texkit, name)]
    assert missing == []


def test_hookspec_version_is_major_minor():
    assert isinstance(texkit.HOOKSPEC_VERSION, str)
    assert re.fullmatch(r"\d+\.\d+", texkit.HOOKSPEC_VERSION), texkit.HOOKSPEC_VERSION
    assert int(texkit.HOOKSPEC_VERSION.split(".")[0]) >= 1


def test_error_hierarchy_is_stable():
    """Plugins catch these: every user error is a TexkitError, and UnknownNameError is a PluginError."""
    for name in ("ConfigError", "DeviceError", "MeshError", "PluginError", "RewardError", "UnknownNameError", "WeightsError"):
        assert issubclass(getattr(texkit, name), texkit.TexkitError)
    assert issubclass(texkit.UnknownNameError, texkit.PluginError)


def test_reward_base_class_contract():
    """The attributes and methods third-party rewards override or read."""
    reward = texkit.Reward
    for attribute in ("name", "description", "differentiable", "needs_renders", "Params", "prepare", "__call__"):
        assert hasattr(reward, attribute)
    assert reward.differentiable is True and reward.needs_renders is False


def test_hook_names_are_stable():
    from texkit import hookspecs

    for hook in ("texkit_register_rewards", "texkit_register_renderers", "texkit_register_generators", "texkit_register_commands"):
        assert callable(getattr(hookspecs, hook))
