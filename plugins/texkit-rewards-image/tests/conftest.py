"""Shared helpers of the image-reward tests, as fixtures (test modules are imported by path)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch


def directional_derivatives(value: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, direction: torch.Tensor, h: float = 1e-5) -> tuple[float, float]:
    """d/dt value(x + t direction) at t = 0 by autograd and by central differences: ``(analytic, numeric)``."""
    leaf = x.detach().clone().requires_grad_(True)
    value(leaf).backward()
    analytic = float((leaf.grad * direction).sum())
    with torch.no_grad():
        numeric = float((value(x + h * direction) - value(x - h * direction)) / (2 * h))
    return analytic, numeric


@pytest.fixture(scope="session")
def directional():
    """:func:`directional_derivatives` as a fixture."""
    return directional_derivatives
