"""Convenience rendering: checkerboard textures and orbit view grids (used by ``texkit render``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from texkit.cameras import Cameras
from texkit.defaults import DEFAULT_RENDERER
from texkit.devices import resolve_device
from texkit.errors import TexkitError
from texkit.geometry.primitives import load_mesh
from texkit.imageio import image_grid, read_texture, square_texture, write_image
from texkit.registry import get_registry
from texkit.types import RenderOutput, Texture

__all__ = ["checkerboard", "composite", "render_views_grid"]


def checkerboard(size: int = 512, cells: int = 8) -> torch.Tensor:
    """A colourful UV checkerboard, ``(size, size, 3)`` in [0, 1]: u shades red, v shades green."""
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    v, u = torch.meshgrid(1.0 - coords, coords, indexing="ij")
    check = ((u * cells).floor() + (v * cells).floor()) % 2
    return torch.stack((0.25 + 0.6 * u, 0.25 + 0.6 * v, 0.35 + 0.5 * check), dim=-1).clamp(0, 1)


def composite(render: RenderOutput, background: float = 1.0) -> torch.Tensor:
    """``(N, H, W, 3)`` rgb over a constant background using the render's alpha."""
    return render.rgb * render.alpha + background * (1.0 - render.alpha)


def render_views_grid(
    mesh_spec: str,
    out_dir: str | Path,
    texture_path: str | Path | None = None,
    views: int = 8,
    size: int = 256,
    elevation: float = -20.0,
    renderer_name: str = DEFAULT_RENDERER,
    notify: Callable[[str], None] | None = None,
    device: str = "cpu",
) -> Path:
    """Render ``views`` orbit views of a mesh and write them as ``out_dir/views.png``.

    Args:
        texture_path: texture image; None renders the mesh file's own texture (`Mesh.texture`),
            or a UV checkerboard when it has none.
        notify: receives one-line notices (e.g. a texture converted to square RGB).
        device: where to render (``cpu``, ``cuda``, ``cuda:1``, ``auto``).

    Returns:
        The path of the written grid.

    Raises:
        TexkitError: ``views`` or ``size`` out of range, or a bad mesh/texture/renderer.
    """
    if views < 1:
        raise TexkitError(f"--views {views}: need at least 1 view")
    if size < 16:
        raise TexkitError(f"--size {size}: images need at least 16 pixels a side")
    where = resolve_device(device)
    mesh = load_mesh(mesh_spec, notify=None if texture_path else notify).to(where)
    if texture_path:
        image = read_texture(texture_path, notify)
    elif mesh.texture is not None:
        image = square_texture(mesh.texture.cpu(), f"{mesh_spec}'s texture", notify)
    else:
        image = checkerboard()
    image = image.to(where)
    renderer = get_registry().make_renderer(renderer_name)
    cams = Cameras.orbit(views, elevation=elevation, device=where)
    with torch.no_grad():
        out = renderer.render(mesh, Texture(image), cams, size)
    path = Path(out_dir) / "views.png"
    write_image(path, image_grid(composite(out), columns=min(views, 4)))
    return path
