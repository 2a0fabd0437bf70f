"""The default plugin names, in one place, and which distribution provides each built-in name.

The core never imports a plugin; it only *names* the defaults a fresh config uses and, for a
helpful error when one is missing, the distribution to install.
"""

from __future__ import annotations

__all__ = ["DEFAULT_GENERATOR", "DEFAULT_RENDERER", "PROVIDERS", "install_hint"]

DEFAULT_GENERATOR = "tiny"
"""Generator of a config that names none: the tiny random model (CPU, seconds)."""

DEFAULT_RENDERER = "torch"
"""Renderer of a config that names none: the pure-PyTorch rasteriser (CPU and CUDA)."""

PROVIDERS: dict[str, dict[str, str]] = {
    "generators": {"tiny": "texkit-diffusers", "stable-diffusion": "texkit-diffusers"},
    "renderers": {"torch": "texkit-torch-render", "nvdiffrast": "texkit-nvdiffrast"},
    "rewards": {
        name: "texkit-rewards-geometry"
        for name in ("symmetry", "curvature_color", "curvature_alignment", "feature_emphasis", "camera_pose", "reference")
    }
    | {name: "texkit-rewards-image" for name in ("aesthetic", "jpeg_compressibility", "jpeg_incompressibility")},
}
"""``{kind: {name: distribution}}`` of the first-party plugins, for install hints only."""


def install_hint(kind: str, name: str) -> str:
    """``" (provided by texkit-diffusers: pip install texkit-diffusers)"`` or ``""`` for unknown names."""
    dist = PROVIDERS.get(kind, {}).get(name)
    return f" (provided by {dist}: pip install {dist})" if dist else ""
