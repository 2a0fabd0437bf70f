"""Scoring a textured mesh with rewards outside training (``texkit score``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from texkit.cameras import Cameras
from texkit.defaults import DEFAULT_RENDERER
from texkit.geometry.cache import GeometryCache
from texkit.geometry.primitives import load_mesh
from texkit.imageio import read_texture
from texkit.registry import get_registry
from texkit.reward_set import RewardSet
from texkit.session import resolve_device
from texkit.types import Texture

__all__ = ["score_texture"]


def score_texture(
    mesh_spec: str,
    texture_path: str | Path,
    reward_names: list[str],
    params: dict[str, Any] | None = None,
    camera_preset: str = "tilted_short",
    size: int = 256,
    renderer_name: str = DEFAULT_RENDERER,
    notify: Callable[[str], None] | None = None,
    device: str = "cpu",
) -> dict[str, dict[str, Any]]:
    """Score ``texture_path`` on a mesh with each named reward.

    Args:
        mesh_spec: mesh file or built-in mesh name.
        texture_path: texture image (coverage is taken as full).
        reward_names: registered reward names.
        params: parameters passed to every reward.
        camera_preset: reward cameras for rewards that read renders.
        size: render resolution.
        renderer_name: renderer used when a reward needs renders.
        notify: receives one-line notices (e.g. a texture converted to square RGB).
        device: where to score and render (``cpu``, ``cuda``, ``cuda:1``, ``auto``).

    Returns:
        ``{reward: {"value": float, "metrics": {...}}}``.
    """
    reg = get_registry()
    rewards = RewardSet({name: reg.make_reward(name, params or {}) for name in reward_names})
    where = resolve_device(device)
    cpu_mesh = load_mesh(mesh_spec)
    cache = GeometryCache(cpu_mesh)
    mesh = cpu_mesh.to(where)
    texture = Texture(read_texture(texture_path, notify).to(where))
    cameras = Cameras.preset(camera_preset, device=where)
    render_fn = None
    if rewards.needs_renders:
        renderer = reg.make_renderer(renderer_name)

        def render_fn(tex: Texture, cams: Cameras) -> Any:
            return renderer.render(mesh, tex, cams, size)

    with torch.no_grad():
        rewards.prepare(cpu_mesh, cache)
        scores = rewards.score(mesh, texture, cameras, render_fn, cache, device=where)
    metrics = scores.metrics[0]
    return {
        name: {
            "value": float(scores.values[name][0]),
            "metrics": {k.split("/", 1)[1]: v for k, v in metrics.items() if k.startswith(f"{name}/")},
        }
        for name in rewards
    }
