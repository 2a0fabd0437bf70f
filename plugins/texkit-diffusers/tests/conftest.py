"""Shared helpers of the texkit-diffusers tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch


def paint_random_view(gen, seed: int = 5) -> torch.Tensor:
    """One 64 px view painted without gradients from seeded random inputs (half of it kept)."""
    g = torch.Generator().manual_seed(seed)
    image, depth = torch.rand(1, 3, 64, 64, generator=g), torch.rand(1, 1, 64, 64, generator=g)
    keep = (torch.rand(1, 1, 64, 64, generator=g) > 0.5).float()
    with torch.no_grad():
        return gen.paint(gen.encode_prompt(["a vase"], [""]), image, depth, keep, torch.Generator().manual_seed(9))


@pytest.fixture
def paint_view() -> Callable[..., torch.Tensor]:
    """:func:`paint_random_view`, as a fixture."""
    return paint_random_view
