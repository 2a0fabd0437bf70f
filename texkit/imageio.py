"""Reading and writing images as float tensors in [0, 1] (channels last), and view grids.

Every image texkit reads (a texture, ``texture.init``/``texture.mask``, a mesh's own texture) goes
through `image_to_rgb`, which keeps the values the file holds:

* 8-bit RGB as is (k / 255); RGBA, grayscale (with or without alpha), palette, 1-bit, CMYK and
  YCbCr are converted to RGB by Pillow, alpha dropped or returned;
* 16-bit grayscale as value / 65535 (not clipped to 255, which made it white);
* 16-bit RGB / RGBA / grayscale+alpha PNGs at 8 bits per channel (Pillow keeps the high byte: an
  error below 1/255);
* 32-bit float grayscale (TIFF) as its values in [0, 1], values outside clipped; NaN/inf refused;
* 32-bit integer grayscale as 16-bit values (value / 65535) when they lie in 0..65535, else refused;
* formats Pillow does not read (OpenEXR, Radiance HDR, float RGB TIFF) are refused in one line.

Each conversion is reported through ``notify`` in one line.
"""

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

__all__ = ["read_image", "read_texture", "texture_from_image", "image_to_rgb", "square_texture", "write_image", "image_grid", "MIN_TEXTURE_SIZE"]

MIN_TEXTURE_SIZE = 16
"""Smallest texture side texkit works with (as ``texture.size`` in the config)."""


def read_image(path: str | Path) -> torch.Tensor:
    """Read an image file as an ``(H, W, 3)`` float32 tensor in [0, 1].

    Raises:
        TexkitError: missing, a folder, or not a readable image.
    """
    path = Path(path)
    return decode_image_file(path, "image", lambda img: torch.from_numpy(image_to_rgb(img, f"image {path}")[0]))


def read_texture(path: str | Path, notify: Callable[[str], None] | None = None) -> torch.Tensor:
    """Read a texture image as a square ``(S, S, 3)`` float32 tensor in [0, 1].

    Images that are not 8-bit RGB are converted to RGB as `image_to_rgb` says, and images
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
            _remember_depth(img)
            img.load()
            return convert(img)
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise TexkitError(f"could not read {what} {path} ({type(err).__name__}); pass {formats}") from None


def texture_from_image(image: Any, label: str, notify: Callable[[str], None] | None = None) -> torch.Tensor:
    """A PIL image as an ``(H, W, 3)`` float32 RGB tensor in [0, 1], at its own size.

    Converted as `image_to_rgb` says (alpha dropped), each conversion reported through ``notify``
    in one line that starts with ``label`` (e.g. ``"texture t.png"``).
    """
    return torch.from_numpy(image_to_rgb(image, label, notify)[0])


_BITS = "texkit.bits_per_channel"  # image.info keys: the file's bits per channel and pixel layout,
_LAYOUT = "texkit.layout"  # noted before decoding (Pillow decodes 16-bit colour to 8-bit RGB/RGBA)

_KINDS = {
    "1": "1-bit",
    "L": "grayscale",
    "P": "palette",
    "PA": "palette with alpha",
    "LA": "grayscale with alpha",
    "La": "grayscale with alpha",
}


def _remember_depth(image: Any) -> None:
    """Note in ``image.info`` that the file stores 16 bits per channel (seen only before decoding)."""
    tile = getattr(image, "tile", None)
    if not tile:
        return
    args = tile[0][3] if len(tile[0]) > 3 else ""
    raw = args if isinstance(args, str) else (str(args[0]) if args else "")
    if ";16" in raw:
        image.info[_BITS] = 16
        image.info[_LAYOUT] = raw.split(";")[0]


def image_to_rgb(image: Any, label: str, notify: Callable[[str], None] | None = None, use_alpha: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """A PIL image's colours and alpha as float32 arrays in [0, 1], the values the file holds.

    See the module docstring for each mode: 8-bit modes through Pillow's conversion to RGB(A),
    16-bit grayscale as value / 65535, float grayscale as is (clipped to [0, 1]), 16-bit colour at
    8 bits per channel.

    Args:
        image: a PIL image (decoded or not).
        label: how notices and errors name it, e.g. ``"texture t.png"``.
        notify: receives one line for each conversion (``"<label> is 16-bit grayscale; ..."``).
        use_alpha: the caller reads the alpha channel (the notice then does not say it is ignored).

    Returns:
        ``(H, W, 3)`` RGB and ``(H, W)`` alpha (None when the image has no alpha channel).

    Raises:
        TexkitError: float values that are NaN or infinite, integer values outside 0..65535.
        OSError, ValueError: the image does not decode.
    """
    _remember_depth(image)
    mode = image.mode
    deep = image.info.get(_BITS) == 16
    alpha = None
    if mode.startswith("I;16") or mode == "I":
        values = np.asarray(image).astype(np.float64)
        if mode == "I" and values.size and (values.min() < 0 or values.max() > 65535):
            raise TexkitError(f"{label} is a 32-bit integer image with values outside 0..65535; save it as an 8- or 16-bit PNG")
        grey = values / 65535.0
        what = "16-bit grayscale; converted to RGB (value / 65535)" if mode != "I" else "32-bit integer grayscale; read as 16-bit values (value / 65535), converted to RGB"
    elif mode == "F":
        values = np.asarray(image, dtype=np.float64)
        if not np.isfinite(values).all():
            raise TexkitError(f"{label} has NaN or infinite values; save it with values in [0, 1]")
        outside = int(((values < 0.0) | (values > 1.0)).sum())
        grey = np.clip(values, 0.0, 1.0)
        clipped = f", {outside} texels outside [0, 1] clipped" if outside else ""
        what = f"32-bit float grayscale; converted to RGB (values read as [0, 1]{clipped})"
    else:
        grey = None
        has_alpha = mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in image.info
        converted = image.convert("RGBA") if has_alpha or mode in ("P", "PA", "LA", "La") else image.convert("RGB")
        rgba = np.asarray(converted, dtype=np.float32) / 255.0
        rgb = np.ascontiguousarray(rgba[..., :3])
        if has_alpha:
            alpha = np.ascontiguousarray(rgba[..., 3])
        depth = " with 16 bits per channel" if deep else ""
        read = "read at 8 bits per channel" if deep else ""
        ignored = "" if use_alpha or not has_alpha else "its alpha channel is ignored"
        layout = image.info.get(_LAYOUT, mode) if deep else mode
        if layout in ("RGB", "RGBA"):
            what = f"{layout}{depth}; " + ", ".join(x for x in (read, ignored) if x) if (deep or ignored) else ""
        else:
            kind = _KINDS.get(layout, layout if layout == "CMYK" else f"{layout} (not RGB)")
            profile = " without a colour profile" if layout == "CMYK" else ""
            what = f"{kind}{depth}; converted to RGB{profile}" + "".join(f", {x}" for x in (read, ignored.replace("its alpha channel is", "alpha")) if x)
    if grey is not None:
        rgb = np.repeat(grey.astype(np.float32)[..., None], 3, axis=-1)
    if what and notify is not None:
        notify(f"{label} is {what}")
    return rgb, alpha


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
