"""An on-disk cache of per-mesh precomputation (curvatures, symmetry pairs, ...), keyed by the mesh hash.

Entries are dicts of tensors saved with ``torch.save`` under
``$TEXKIT_CACHE_DIR/<mesh hash>/<key>.pt`` (default ``~/.cache/texkit/geometry``); writes are
atomic so an interrupted run never leaves a corrupt entry. Loading uses ``weights_only=True``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from texkit.io import atomic_path

if TYPE_CHECKING:  # pragma: no cover
    from texkit.geometry.mesh import Mesh

__all__ = ["GeometryCache", "default_cache_dir"]


def default_cache_dir() -> Path:
    """``$TEXKIT_CACHE_DIR`` or ``~/.cache/texkit/geometry``."""
    env = os.environ.get("TEXKIT_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "texkit" / "geometry"


class GeometryCache:
    """Per-mesh store of precomputed tensors, in memory and on disk.

    Args:
        mesh: the mesh the entries belong to.
        root: cache folder; None uses `default_cache_dir`; ``False`` keeps entries in memory only.
    """

    def __init__(self, mesh: "Mesh", root: str | Path | None | bool = None) -> None:
        self.mesh = mesh
        self.root: Path | None = None if root is False else Path(root or default_cache_dir()) / mesh.content_hash
        self._memory: dict[str, Any] = {}

    def get(self, key: str, compute: Callable[[], dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """Return the entry ``key``, computing and storing it on first use.

        Args:
            key: a file-name-safe identifier that includes every parameter the value depends on
                (e.g. ``"min_curvature_dirs_smooth500"``).
            compute: builds the entry as a dict of tensors (on the CPU).
        """
        if key in self._memory:
            return self._memory[key]
        path = None if self.root is None else self.root / f"{key}.pt"
        value = None
        if path is not None and path.exists():
            try:
                value = torch.load(path, weights_only=True)
            except Exception:  # a corrupt entry is recomputed, never trusted
                value = None
        if value is None:
            value = compute()
            if path is not None:
                with atomic_path(path) as tmp:
                    torch.save(value, tmp)
        self._memory[key] = value
        return value
