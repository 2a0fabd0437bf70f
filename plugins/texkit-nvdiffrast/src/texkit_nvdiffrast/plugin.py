"""Registers the ``nvdiffrast`` renderer (built lazily: importing this module needs no GPU)."""

from __future__ import annotations

from typing import Any

import texkit


def _make_renderer(**options: Any) -> Any:
    from texkit_nvdiffrast.renderer import NvdiffrastRenderer

    return NvdiffrastRenderer(**options)


@texkit.hookimpl
def texkit_register_renderers(register: Any) -> None:
    """Register ``nvdiffrast``."""
    register("nvdiffrast", _make_renderer)
