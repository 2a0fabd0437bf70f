"""The ``jpeg_compressibility`` reward (DDPO): minus the JPEG size in kB. Scoring only."""

from __future__ import annotations

import texkit
from texkit_rewards_image.jpeg_size import JpegSizeReward

__all__ = ["JpegCompressibility"]


class JpegCompressibility(JpegSizeReward):
    """``-size_kB`` of the JPEG-encoded texture or renders: higher for simpler, flatter images."""

    name = "jpeg_compressibility"
    description = "Minus the JPEG size in kB of the texture or renders (DDPO); scoring only."
    sign = -1.0


@texkit.hookimpl
def texkit_register_rewards(register) -> None:
    """Register the ``jpeg_compressibility`` reward."""
    register(JpegCompressibility)
