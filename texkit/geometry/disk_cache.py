"""The files of the geometry cache: where it lives, atomic writes, safe loads, one-line notices.

Shared by `texkit.geometry.cache.GeometryCache` (per-mesh precomputations) and
`texkit.geometry.unwrap` (the xatlas UV unwrap, which runs before a `Mesh` exists). This module
knows nothing of meshes, so the mesh, its unwrap and its cache import it without importing each other.
Long computations announce themselves with `notice` (one line on stderr), so slow geometry work is
never silent.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from texkit.io import atomic_path

__all__ = ["default_cache_dir", "load_entry", "save_entry", "notice"]


def default_cache_dir() -> Path:
    """``$TEXKIT_CACHE_DIR`` or ``~/.cache/texkit/geometry``."""
    env = os.environ.get("TEXKIT_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "texkit" / "geometry"


def notice(message: str) -> None:
    """Print ``texkit: note: <message>`` as one line on stderr (a long geometry step starting)."""
    print(f"texkit: note: {message}", file=sys.stderr, flush=True)


def load_entry(path: Path | None) -> dict[str, torch.Tensor] | None:
    """The dict of tensors stored at ``path``, or None when it is absent or does not load.

    Loading uses ``weights_only=True``, so a file holding anything but tensors and plain containers
    is refused; a corrupt or truncated file counts as absent (it is recomputed, never trusted).
    """
    if path is None or not path.exists():
        return None
    try:
        value = torch.load(path, weights_only=True)
    except Exception:
        return None
    return value if isinstance(value, dict) else None


def save_entry(path: Path | None, value: dict[str, torch.Tensor]) -> None:
    """Store ``value`` at ``path`` atomically (written under a temporary name, then renamed); None: no-op."""
    if path is not None:
        with atomic_path(path) as tmp:
            torch.save(value, tmp)
