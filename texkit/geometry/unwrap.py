"""UV unwrapping of a mesh without UVs (xatlas), cached on disk.

xatlas (J. Young, a port of thekla_atlas by I. Castano) segments the surface into charts,
parametrises each with least squares conformal maps (Levy, Petitjean, Ray & Maillot 2002, "Least
squares conformal maps for automatic texture atlas generation") and packs them into one atlas. It
takes seconds on a mesh of tens of thousands of faces, so the result is stored under
``$TEXKIT_CACHE_DIR/unwrap/<input hash>.pt`` (default ``~/.cache/texkit/geometry``) and every later
load of the same geometry reads it back. The key hashes the arrays xatlas receives (positions and
faces, before any normalisation) and the xatlas version; the mesh's `content_hash` cannot serve
since it includes the UVs being made. Writes are atomic, loading uses ``weights_only=True``, and an
entry that does not load or does not fit the mesh is recomputed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from texkit.geometry.disk_cache import default_cache_dir, load_entry, notice, save_entry

__all__ = ["unwrap", "unwrap_key", "NOTICE_FACES"]

#: Bumped when the unwrap call changes (options, output layout), so that older entries are not read.
_VERSION = 1

#: Unwrapping a mesh with at least this many faces prints a notice line on stderr (about a second
#: or more on a 2-core machine); smaller meshes unwrap silently.
NOTICE_FACES = 20_000


def _xatlas_version() -> str:
    """The installed xatlas distribution's version ("unknown" when the metadata is missing)."""
    from importlib import metadata

    try:
        return metadata.version("xatlas")
    except metadata.PackageNotFoundError:  # pragma: no cover - a source build without metadata
        return "unknown"


def unwrap_key(verts: np.ndarray, tris: np.ndarray) -> str:
    """SHA-256 (hex, 24 chars) of the unwrap's input: xatlas' version, the shapes and the raw arrays.

    Args:
        verts: ``(V, 3)`` float32 positions, exactly as handed to xatlas.
        tris: ``(F, 3)`` uint32 vertex indices, exactly as handed to xatlas.
    """
    digest = hashlib.sha256(f"xatlas {_xatlas_version()} v{_VERSION} {verts.shape} {tris.shape}".encode())
    digest.update(np.ascontiguousarray(verts).tobytes())
    digest.update(np.ascontiguousarray(tris).tobytes())
    return digest.hexdigest()[:24]


def _fits(entry: dict[str, torch.Tensor] | None, faces: int) -> bool:
    """Whether a loaded entry is a usable unwrap of a mesh with ``faces`` faces."""
    if entry is None or not {"uvs", "uv_faces"} <= entry.keys():
        return False
    uvs, uv_faces = entry["uvs"], entry["uv_faces"]
    return (
        uvs.dim() == 2
        and uvs.shape[1] == 2
        and bool(torch.isfinite(uvs).all())
        and tuple(uv_faces.shape) == (faces, 3)
        and int(uv_faces.min()) >= 0
        and int(uv_faces.max()) < uvs.shape[0]
    )


def _parametrize(verts: np.ndarray, tris: np.ndarray) -> dict[str, torch.Tensor]:
    """Run xatlas; returns ``uvs`` ``(T, 2)`` float64 and ``uv_faces`` ``(F, 3)`` int64 (same face order)."""
    import xatlas

    _vmapping, indices, uvs = xatlas.parametrize(verts, tris)
    return {
        "uvs": torch.from_numpy(np.asarray(uvs, dtype=np.float64)),
        "uv_faces": torch.from_numpy(np.asarray(indices, dtype=np.int64).reshape(-1, 3)),
    }


def unwrap(
    verts: np.ndarray, tris: np.ndarray, cache_dir: str | Path | None | bool = None
) -> tuple[np.ndarray, np.ndarray]:
    """UV-unwrap a mesh with xatlas, reading the result from the cache when it was made before.

    Args:
        verts: ``(V, 3)`` positions.
        tris: ``(F, 3)`` vertex indices.
        cache_dir: cache root; None uses `default_cache_dir` (``$TEXKIT_CACHE_DIR``); ``False``
            neither reads nor writes the cache.

    Returns:
        ``(uvs (T, 2) float64, uv_faces (F, 3) int64)``: corner k of face f has UV ``uvs[uv_faces[f, k]]``.
    """
    verts32 = np.ascontiguousarray(verts, dtype=np.float32)
    tris32 = np.ascontiguousarray(tris, dtype=np.uint32)
    path = None
    if cache_dir is not False:
        path = Path(cache_dir or default_cache_dir()) / "unwrap" / f"{unwrap_key(verts32, tris32)}.pt"
    entry = load_entry(path)
    if not _fits(entry, len(tris32)):
        if len(tris32) >= NOTICE_FACES:
            cached = " (cached for next time)" if path is not None else ""
            notice(f"unwrapping UVs of {len(tris32):,} faces with xatlas{cached} ...")
        entry = _parametrize(verts32, tris32)
        try:
            save_entry(path, entry)
        except OSError as err:  # the cache only saves time: an unwritable folder must not fail the load
            notice(
                f"could not cache the UV unwrap in {path.parent} ({err.strerror or err}); set TEXKIT_CACHE_DIR to a writable folder"
            )
    return entry["uvs"].numpy(), entry["uv_faces"].numpy()
