"""Conformance of the JPEG rewards with the reference implementation (issue 17).

``../shared/conformance`` (next to the repository) holds the reference's JPEG sizes of three 256 x 256
textures (quality 95, Pillow defaults: baseline, 4:2:0). The byte count depends on the JPEG library
build, so the rewards are compared **within 2 %** of the reference value; with the fixture's own
libjpeg-turbo version (recorded in the fixture) the count must be exact.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from texkit_rewards_image.jpeg_compressibility import JpegCompressibility
from texkit_rewards_image.jpeg_incompressibility import JpegIncompressibility

from texkit.geometry.primitives import cube
from texkit.types import RewardContext, Texture

FIXTURE = Path(__file__).resolve().parents[3].parent / "shared" / "conformance"
pytestmark = pytest.mark.skipif(
    not (FIXTURE / "reference_values.json").is_file(),
    reason=f"the reward conformance fixture is absent: expected {FIXTURE} (../shared/conformance next to the repository)",
)
REL_TOL = 0.02  # libjpeg builds differ in their byte counts

REWARDS = {"jpeg_compressibility": JpegCompressibility, "jpeg_incompressibility": JpegIncompressibility}


def _reference(name: str) -> dict:
    return json.loads((FIXTURE / "reference_values.json").read_text())["rewards"][name]


def _texture(index: int, dtype: torch.dtype) -> torch.Tensor:
    """Fixture texture ``index`` as the reward sees it: ``(H, W, 3)`` uint8 / 255 in ``dtype``."""
    with np.load(FIXTURE / "textures.npz") as z:
        u8 = z["textures_nchw_u8"][index].transpose(1, 2, 0).copy()
    return torch.from_numpy(u8).to(dtype) / 255.0


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name", sorted(REWARDS))
def test_jpeg_rewards_match_the_reference_sizes(name, dtype):
    from PIL import features

    info = _reference(name)
    same_library = features.version("libjpeg_turbo") == info["libjpeg_turbo"]
    reward = REWARDS[name]()  # defaults: source="texture", quality=95, as the reference
    for case in info["cases"]:
        ctx = RewardContext(mesh=cube(), texture=Texture(_texture(case["texture_index"], dtype)))
        value = float(reward(ctx).value)
        print(f"{name} {case['id']}: texkit {value:+.3f} reference {case['value']:+.3f} (libjpeg-turbo same: {same_library})")
        assert value == pytest.approx(case["value"], rel=REL_TOL)
        if same_library:
            assert round(abs(value) * 1000) == case["jpeg_bytes"]
