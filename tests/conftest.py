"""Shared fixtures: the shared test meshes beside the repository and the torch renderer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ASSETS = Path(__file__).resolve().parents[2] / "shared" / "assets"


@pytest.fixture(scope="session", autouse=True)
def _private_geometry_cache(tmp_path_factory: pytest.TempPathFactory):
    """Point ``TEXKIT_CACHE_DIR`` (geometry cache, UV unwraps) at a folder of this test session, so
    tests neither read a developer's ~/.cache/texkit nor write into it."""
    old = os.environ.get("TEXKIT_CACHE_DIR")
    os.environ["TEXKIT_CACHE_DIR"] = str(tmp_path_factory.mktemp("texkit_cache"))
    yield
    if old is None:
        os.environ.pop("TEXKIT_CACHE_DIR", None)
    else:
        os.environ["TEXKIT_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def assets() -> Path:
    """Folder of the shared meshes (../shared/assets); skips when it is absent."""
    if not ASSETS.exists():
        pytest.skip(f"shared assets not found at {ASSETS}")
    return ASSETS


@pytest.fixture(scope="session")
def torch_renderer():
    """The registered ``torch`` renderer."""
    import texkit

    return texkit.get_registry().make_renderer("torch")


def _png16(path: Path, values, color_type: int | None = None) -> Path:
    """Write ``values`` (uint16, ``(H, W)`` grey or ``(H, W, C)`` with C = 2 grey+alpha, 3 RGB, 4 RGBA)
    as a 16-bit PNG, encoded here (Pillow writes 16 bits only for grey)."""
    import struct
    import zlib

    import numpy as np

    arr = np.asarray(values, dtype=np.uint16)
    arr = arr[..., None] if arr.ndim == 2 else arr
    kind = color_type if color_type is not None else {1: 0, 2: 4, 3: 2, 4: 6}[arr.shape[-1]]
    rows = b"".join(b"\x00" + arr[r].astype(">u2").tobytes() for r in range(arr.shape[0]))  # filter 0 per row

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", arr.shape[1], arr.shape[0], 16, kind, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="session")
def png16():
    """``png16(path, uint16 values) -> path``: a 16-bit PNG (grey, grey+alpha, RGB or RGBA by the last axis)."""
    return _png16
