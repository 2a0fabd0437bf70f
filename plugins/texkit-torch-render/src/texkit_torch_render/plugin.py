"""Registers the ``torch`` renderer."""

from __future__ import annotations

from typing import Any

import texkit


def _make_renderer(**options: Any) -> Any:
    from texkit_torch_render.renderer import TorchRenderer

    return TorchRenderer(**options)


@texkit.hookimpl
def texkit_register_renderers(register: Any) -> None:
    """Register ``torch``: the pure-PyTorch rasteriser."""
    register("torch", _make_renderer)
