"""An on-disk cache of per-mesh precomputation (curvatures, symmetry pairs, ...), keyed by the mesh hash.

Entries are dicts of tensors saved with ``torch.save`` under
``$TEXKIT_CACHE_DIR/<mesh hash>/<key>.pt`` (default ``~/.cache/texkit/geometry``); writes are
atomic so an interrupted run never leaves a corrupt entry. Loading uses ``weights_only=True``, and
an entry that does not load is recomputed (the file helpers are `texkit.geometry.disk_cache`, shared
with the xatlas UV unwrap of a mesh without UVs, cached under the same root by `texkit.geometry.unwrap`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import torch

from texkit.geometry.disk_cache import default_cache_dir, load_entry, save_entry

if TYPE_CHECKING:  # pragma: no cover
    from texkit.geometry.mesh import Mesh

T = TypeVar("T")

__all__ = ["GeometryCache"]


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
        value = load_entry(path)
        if value is None:
            value = compute()
            save_entry(path, value)
        self._memory[key] = value
        return value

    def derived(self, key: str, build: Callable[[], T]) -> T:
        """An object derived from the mesh (e.g. its welded mesh), built once and kept in memory only.

        Args:
            key: names the object (its own namespace: it never collides with `get`'s keys).
            build: makes it.
        """
        name = f"derived:{key}"
        if name not in self._memory:
            self._memory[name] = build()
        return self._memory[name]
