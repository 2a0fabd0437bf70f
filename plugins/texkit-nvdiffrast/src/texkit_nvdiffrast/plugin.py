"""Registers the ``nvdiffrast`` renderer (built lazily: importing this module needs no GPU)."""

from __future__ import annotations

from typing import Any, Literal

import pydantic

import texkit


class NvdiffrastParams(pydantic.BaseModel):
    """Options of the ``nvdiffrast`` renderer (``[renderer.options]`` in a run config)."""

    model_config = pydantic.ConfigDict(extra="forbid")

    near: float = pydantic.Field(0.1, gt=0, description="Near clip plane distance.")
    far: float = pydantic.Field(100.0, gt=0, description="Far clip plane distance.")
    device: str | None = pydantic.Field(None, description="CUDA device (default: the current one).")
    filter_mode: Literal["linear", "linear-mipmap-linear"] = pydantic.Field(
        "linear", description="`linear` (bilinear, as the torch renderer) or `linear-mipmap-linear` (trilinear, for minified textures)."
    )


def _make_renderer(params: NvdiffrastParams) -> Any:
    from texkit_nvdiffrast.renderer import NvdiffrastRenderer

    return NvdiffrastRenderer(near=params.near, far=params.far, device=params.device, filter_mode=params.filter_mode)


@texkit.hookimpl
def texkit_register_renderers(register: Any) -> None:
    """Register ``nvdiffrast``."""
    register("nvdiffrast", _make_renderer, NvdiffrastParams)
