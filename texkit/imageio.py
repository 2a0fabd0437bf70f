"""Reading and writing images as float tensors in [0, 1] (channels last), and view grids."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch

from texkit.errors import TexkitError
from texkit.io import atomic_write_bytes

__all__ = ["read_image", "write_image", "image_grid"]


def read_image(path: str | Path) -> torch.Tensor:
    """Read an image file as an ``(H, W, 3)`` float32 tensor in [0, 1].

    Raises:
        TexkitError: missing or unreadable file.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise TexkitError(f"image file not found: {path}")
    try:
        with Image.open(path) as img:
            arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError) as err:
        raise TexkitError(f"could not read image {path}: {err}") from None
    return torch.from_numpy(arr.copy())


def write_image(path: str | Path, image: torch.Tensor) -> None:
    """Write an ``(H, W, C)`` tensor in [0, 1] (C = 1, 3 or 4) as PNG, atomically."""
    from PIL import Image

    arr = (image.detach().float().clamp(0, 1).cpu().numpy() * 255.0).round().astype(np.uint8)
    if arr.shape[-1] == 1:
        arr = arr[..., 0]
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


def image_grid(images: torch.Tensor, columns: int | None = None, pad: int = 2, background: float = 1.0) -> torch.Tensor:
    """Tile ``(N, H, W, C)`` images into one ``(rows*(H+pad)-pad, cols*(W+pad)-pad, C)`` image."""
    n, h, w, c = images.shape
    cols = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = torch.full((rows * (h + pad) - pad, cols * (w + pad) - pad, c), background, dtype=images.dtype)
    for i in range(n):
        r, k = divmod(i, cols)
        grid[r * (h + pad) : r * (h + pad) + h, k * (w + pad) : k * (w + pad) + w] = images[i].detach().cpu()
    return grid
