"""The ``jpeg_incompressibility`` reward (DDPO): the JPEG size in kB. Scoring only."""

from __future__ import annotations

import texkit
from texkit_rewards_image.jpeg_size import JpegSizeReward

__all__ = ["JpegIncompressibility"]


class JpegIncompressibility(JpegSizeReward):
    """``size_kB`` of the JPEG-encoded texture or renders: higher for busier, more detailed images."""

    name = "jpeg_incompressibility"
    description = "JPEG size in kB of the texture or renders (DDPO); scoring only."
    sign = 1.0


@texkit.hookimpl
def texkit_register_rewards(register) -> None:
    """Register the ``jpeg_incompressibility`` reward."""
    register(JpegIncompressibility)
