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
    # HOOKSPEC_VERSION 1.1
    "EnvironmentCheck",
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

    for hook in ("texkit_register_rewards", "texkit_register_renderers", "texkit_register_generators", "texkit_register_commands", "texkit_register_checks"):
        assert callable(getattr(hookspecs, hook))


#: Public modules besides ``texkit`` itself, with their frozen names (append only).
FROZEN_MODULE_NAMES = {
    "texkit.geometry": ("GeometryCache", "Mesh", "vertex_normals", "mesh_curvature", "curvature_maps", "min_curvature_field", "mirror_pairs", "minmax_signed"),
    "texkit.batching": ("stack_samples", "unstack_samples", "repeat_for_samples", "sample_slice"),
    "texkit.hub": ("HubOptions", "is_offline", "hub_cache_dir", "looks_like_hub_id", "looks_local", "describe_failure", "cache_snapshot_folder"),
    "texkit.compile_cache": ("CompileCacheCounts", "compile_cache_dir", "enable_compile_cache", "cache_counts", "active_cache_dir"),
}


@pytest.mark.parametrize("module", sorted(FROZEN_MODULE_NAMES))
def test_public_module_names_are_still_exported(module):
    import importlib

    mod = importlib.import_module(module)
    for name in FROZEN_MODULE_NAMES[module]:
        assert name in mod.__all__, f"'{name}' was removed from {module}.__all__: plugins rely on it"
        assert getattr(mod, name) is not None


def test_plugins_import_only_the_public_api():
    """Every ``from texkit... import`` under plugins/*/src names a public module and a name in its ``__all__``
    (the ruff rule TID251 in pyproject.toml bans the private modules by name; this catches new ones)."""
    import ast
    import importlib
    from pathlib import Path

    public = {"texkit": texkit.__all__, "texkit.hookspecs": None}
    public.update({m: importlib.import_module(m).__all__ for m in FROZEN_MODULE_NAMES})
    offences = []
    for path in sorted(Path(__file__).resolve().parents[1].glob("plugins/*/src/**/*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.split(".")[0] == "texkit":
                allowed = public.get(node.module, ())
                bad = [a.name for a in node.names if allowed is not None and a.name not in allowed]
                if bad:
                    offences.append(f"{path.name}: from {node.module} import {', '.join(bad)}")
            elif isinstance(node, ast.Import):
                offences += [f"{path.name}: import {a.name}" for a in node.names if a.name.startswith("texkit.") and a.name not in public]
    assert offences == []
