"""texkit: geometry-aware 3D texture generation with reward fine-tuning.

The names in ``__all__`` are the public API that plugins may rely on; a test guards them.
"""

from __future__ import annotations

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
    Generator,
    PromptEmbedding,
    Renderer,
    RenderOutput,
    RewardContext,
    RewardOutput,
    Texture,
)
from texkit.uv import sample_texture

__version__ = "0.1.0"

__all__ = [
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
]
