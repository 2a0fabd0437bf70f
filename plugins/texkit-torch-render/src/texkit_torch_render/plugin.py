"""Registers the ``torch`` renderer with its typed options."""

from __future__ import annotations

from typing import Any

import pydantic

import texkit


class TorchRendererParams(pydantic.BaseModel):
    """Options of the ``torch`` renderer (``[renderer.options]`` in a run config)."""

    model_config = pydantic.ConfigDict(extra="forbid")

    near: float = pydantic.Field(0.1, gt=0, description="Near clip plane distance.")
    far: float = pydantic.Field(100.0, gt=0, description="Far clip plane distance.")
    device: str | None = pydantic.Field(None, description="Move meshes, textures and cameras here before rendering (default: the mesh's device).")
    aa_walk_steps: int = pydantic.Field(
        4, ge=1, description="Triangles the antialiasing may walk across to find a silhouette edge (1 = the pixel's own triangle)."
    )


def _make_renderer(params: TorchRendererParams) -> Any:
    from texkit_torch_render.renderer import TorchRenderer

    return TorchRenderer(near=params.near, far=params.far, device=params.device, aa_walk_steps=params.aa_walk_steps)


@texkit.hookimpl
def texkit_register_renderers(register: Any) -> None:
    """Register ``torch``: the pure-PyTorch rasteriser."""
    register("torch", _make_renderer, TorchRendererParams)
