"""Scoring a textured mesh with rewards outside training (``texkit score``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from texkit.cameras import Cameras
from texkit.commands.rendering import composite
from texkit.defaults import DEFAULT_RENDERER
from texkit.devices import resolve_device
from texkit.errors import TexkitError
from texkit.geometry.cache import GeometryCache
from texkit.geometry.mesh import Mesh
from texkit.geometry.primitives import load_mesh
from texkit.imageio import image_grid, read_texture, square_texture, write_image
from texkit.out_of_memory import out_of_memory_while
from texkit.registry import get_registry
from texkit.reward_set import RewardSet
from texkit.types import RewardContext, Texture

__all__ = ["score_texture"]


def score_texture(
    mesh_spec: str,
    texture_path: str | Path | None,
    reward_names: list[str],
    params: dict[str, Any] | None = None,
    camera_preset: str = "tilted_short",
    size: int = 256,
    renderer_name: str = DEFAULT_RENDERER,
    notify: Callable[[str], None] | None = None,
    device: str = "cpu",
    reward_params: dict[str, dict[str, Any]] | None = None,
    prompt: str = "",
    pictures: str | Path | None = None,
    picture_views: int = 8,
    out_of_memory_advice: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Score ``texture_path`` (or the mesh's own texture) on a mesh with each named reward.

    Args:
        mesh_spec: mesh file or built-in mesh name.
        texture_path: texture image (coverage is taken as full); None scores the mesh's own
            texture (`Mesh.texture`: a GLB/glTF base-colour texture, an OBJ's ``map_Kd``),
            made square like a texture file (see `texkit.imageio.square_texture`).
        reward_names: registered reward names.
        params: parameters passed to every reward.
        camera_preset: reward cameras for rewards that read renders.
        size: render resolution.
        renderer_name: renderer used when a reward needs renders.
        notify: receives one-line notices (e.g. a texture converted to square RGB).
        device: where to score and render (``cpu``, ``cuda``, ``cuda:1``, ``auto``).
        reward_params: ``{reward: parameters}`` for one reward each, on top of ``params``.
        prompt: the texture's prompt, for rewards that read one.
        pictures: a folder to write ``reward_<name>.png`` into for each reward whose ``visualize``
            returns an image: it rendered on ``picture_views`` orbit views (elevation -20°), as the
            run report shows it.
        picture_views: views of those pictures.
        out_of_memory_advice: what the out-of-memory line tells the user to do (default: the
            ``texkit score --size`` advice; the studio passes its own).

    Returns:
        ``{reward: {"value": float, "metrics": {...}}}`` (plus ``"picture": path`` where one was written).

    Raises:
        TexkitError: no ``texture_path`` and the mesh has no texture of its own (the line says why
            when its file names one that could not be read).
    """
    reg = get_registry()
    per_reward = reward_params or {}
    rewards = RewardSet({name: reg.make_reward(name, {**(params or {}), **per_reward.get(name, {})}) for name in reward_names})
    where = resolve_device(device)
    if texture_path is not None:
        cpu_mesh = load_mesh(mesh_spec)
        image = read_texture(texture_path, notify)
    else:
        cpu_mesh, image = _own_texture(mesh_spec, notify)
    cache = GeometryCache(cpu_mesh)
    mesh = cpu_mesh.to(where)
    texture = Texture(image.to(where))
    cameras = Cameras.preset(camera_preset, device=where)
    render_fn = None
    if rewards.needs_renders or pictures is not None:
        renderer = reg.make_renderer(renderer_name)

        def render_fn(tex: Texture, cams: Cameras) -> Any:
            return renderer.render(mesh, tex, cams, size)

    drawn: dict[str, Path] = {}
    task = f"scoring the texture with {', '.join(reward_names)} at {size} px"
    advice = out_of_memory_advice or f"pass a render size below {size} (texkit score --size, texture.render_size in a config)"
    with torch.no_grad(), out_of_memory_while(task, advice, where):
        rewards.prepare(cpu_mesh, cache)
        scores = rewards.score(mesh, texture, cameras, render_fn, cache, [prompt], device=where)
        if pictures is not None:
            drawn = _write_pictures(rewards, RewardContext(mesh, texture, cameras, None, render_fn, cache, prompt, where), Path(pictures), picture_views)
    metrics = scores.metrics[0]
    results: dict[str, dict[str, Any]] = {
        name: {
            "value": float(scores.values[name][0]),
            "metrics": {k.split("/", 1)[1]: v for k, v in metrics.items() if k.startswith(f"{name}/")},
        }
        for name in rewards
    }
    for name, path in drawn.items():
        results[name]["picture"] = str(path)
    return results


def _write_pictures(rewards: RewardSet, ctx: RewardContext, folder: Path, views: int) -> dict[str, Path]:
    """``reward_<name>.png``: each reward's `visualize` image rendered on ``views`` orbit views (white background)."""
    grid = Cameras.orbit(views, elevation=-20.0, device=ctx.device)
    out = {}
    for name, image in rewards.pictures(ctx).items():
        render = ctx.render(Texture(image.to(ctx.device)), grid)
        out[name] = folder / f"reward_{name}.png"
        write_image(out[name], image_grid(composite(render), columns=min(4, views)))
    return out


def _own_texture(mesh_spec: str, notify: Callable[[str], None] | None) -> tuple[Mesh, torch.Tensor]:
    """The mesh and its own texture made square; one-line error when it has none."""
    from texkit.geometry.mesh_texture import TextureProblem

    notes: list[str] = []
    mesh = load_mesh(mesh_spec, notify=notes.append)
    if mesh.texture is None:
        problems = [n.reason for n in notes if isinstance(n, TextureProblem)]
        why = f": {problems[-1]}" if problems else ""
        raise TexkitError(f"{mesh_spec} has no texture of its own{why}; pass a texture PNG as TEXTURE (texkit score MESH TEXTURE)")
    for note in notes:
        if notify is not None:
            notify(note)
    return mesh, square_texture(mesh.texture, f"the texture of {Path(mesh_spec).name}", notify)
