"""texkit: geometry-aware 3D texture generation with reward fine-tuning.

The names in ``__all__`` are the public API that plugins may rely on; a test guards them.
"""

from __future__ import annotations

from pathlib import Path as _Path

from texkit.cameras import CAMERA_PRESETS, Cameras
from texkit.errors import (
    ConfigError,
    DeviceError,
    MeshError,
    PluginError,
    RewardError,
    TexkitError,
    UnknownNameError,
    WeightsError,
)
from texkit.geometry.cache import GeometryCache
from texkit.geometry.mesh import Mesh
from texkit.hookspecs import HOOKSPEC_VERSION, hookimpl
from texkit.registry import Registry, get_registry
from texkit.reward import Reward
from texkit.types import (
    EnvironmentCheck,
    Generator,
    PromptEmbedding,
    Renderer,
    RenderOutput,
    RewardContext,
    RewardOutput,
    Texture,
)
from texkit.uv import sample_texture

# The one version source of the core and the first-party plugins (pyproject files read it too).
__version__ = (_Path(__file__).parent / "VERSION").read_text(encoding="utf-8").strip()

__all__ = [
    "CAMERA_PRESETS",
    "Cameras",
    "ConfigError",
    "DeviceError",
    "EnvironmentCheck",
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
]
