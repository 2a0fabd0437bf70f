"""Reading and writing images as float tensors in [0, 1] (channels last), and view grids."""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from texkit.errors import TexkitError
from texkit.io import atomic_write_bytes

T = TypeVar("T")

__all__ = ["read_image", "read_texture", "texture_from_image", "square_texture", "write_image", "image_grid", "MIN_TEXTURE_SIZE"]

MIN_TEXTURE_SIZE = 16
"""Smallest texture side texkit works with (as ``texture.size`` in the config)."""


def read_image(path: str | Path) -> torch.Tensor:
    """Read an image file as an ``(H, W, 3)`` float32 tensor in [0, 1].

    Raises:
        TexkitError: missing, a folder, or not a readable image.
    """
    return decode_image_file(Path(path), "image", lambda img: torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0))


def read_texture(path: str | Path, notify: Callable[[str], None] | None = None) -> torch.Tensor:
    """Read a texture image as a square ``(S, S, 3)`` float32 tensor in [0, 1].

    Images that are not RGB (grayscale, RGBA, palette, 16-bit) are converted to RGB, and images
    that are not square or smaller than `MIN_TEXTURE_SIZE` are resized (bilinear) to a square
    of their longer side; each conversion is reported through ``notify`` in one line.

    Raises:
        TexkitError: missing, a folder, or not an image.
    """
    path = Path(path)
    rgb = decode_image_file(path, "texture", lambda img: texture_from_image(img, f"texture {path}", notify))
    return square_texture(rgb, f"texture {path}", notify)


def decode_image_file(path: Path, what: str, convert: Callable[[Any], T], formats: str = "a PNG or JPEG image", missing_hint: str = "") -> T:
    """Open the image file ``path`` and return ``convert(image)``, or raise one line saying what to pass.

    Args:
        path: the image file.
        what: what the file is for, starting the messages (e.g. ``"texture"``, ``"texture.init"``).
        convert: turns the loaded PIL image into the value wanted; its OSError/ValueError count as
            an unreadable image.
        formats: what to pass instead, e.g. ``"a PNG image"``.
        missing_hint: appended to the message of a missing file.

    Raises:
        TexkitError: missing, a folder, or not a readable image.
    """
    from PIL import Image, UnidentifiedImageError

    if not path.exists():
        raise TexkitError(f"{what} file not found: {path}; pass {formats}{missing_hint}")
    if path.is_dir():
        raise TexkitError(f"{what} {path} is a folder; pass {formats}")
    try:
        with Image.open(path) as img:
            img.load()
            return convert(img)
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise TexkitError(f"could not read {what} {path} ({type(err).__name__}); pass {formats}") from None


def texture_from_image(image: Any, label: str, notify: Callable[[str], None] | None = None) -> torch.Tensor:
    """A PIL image as an ``(H, W, 3)`` float32 RGB tensor in [0, 1] (values k / 255), at its own size.

    Grayscale, RGBA, palette and 16-bit images are converted to RGB (alpha dropped), reported
    through ``notify`` in one line that starts with ``label`` (e.g. ``"texture t.png"``).
    """
    mode = image.mode
    rgb = image.convert("RGBA").convert("RGB") if mode in ("P", "PA", "LA") else image.convert("RGB")
    if mode != "RGB" and notify is not None:
        what = {"RGBA": "RGBA; its alpha channel is ignored", "LA": "grayscale with alpha; converted to RGB, alpha ignored"}
        notify(f"{label} is {what.get(mode, f'{mode} (not RGB); converted to RGB')}")
    return torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0)


def square_texture(texture: torch.Tensor, label: str, notify: Callable[[str], None] | None = None) -> torch.Tensor:
    """The ``(S, S, 3)`` texture texkit works on, from an ``(H, W, 3)`` one in [0, 1].

    A texture that is not square or smaller than `MIN_TEXTURE_SIZE` is resized (bilinear, on
    8-bit values, as `read_texture` does) to a square of its longer side, reported through
    ``notify`` in one line that starts with ``label``; a square one is returned as is.
    """
    from PIL import Image

    height, width = int(texture.shape[0]), int(texture.shape[1])
    side = max(width, height, MIN_TEXTURE_SIZE)
    if (width, height) == (side, side):
        return texture
    arr = (texture.detach().float().clamp(0, 1).cpu().numpy() * 255.0).round().astype(np.uint8)
    rgb = Image.fromarray(arr, "RGB").resize((side, side), Image.BILINEAR)
    if notify is not None:
        notify(f"{label} is {width}x{height}; resized to {side}x{side} (texkit textures are square, at least {MIN_TEXTURE_SIZE} px)")
    out = torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0)
    return out.to(texture.device)


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
