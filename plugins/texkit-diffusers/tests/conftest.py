"""Shared helpers of the texkit-diffusers tests."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # diffusers_standins, for the test modules (pytest's importlib mode adds no folder)


def paint_random_view(gen, seed: int = 5) -> torch.Tensor:
    """One 64 px view painted without gradients from seeded random inputs (half of it kept)."""
    g = torch.Generator().manual_seed(seed)
    image, depth = torch.rand(1, 3, 64, 64, generator=g), torch.rand(1, 1, 64, 64, generator=g)
    keep = (torch.rand(1, 1, 64, 64, generator=g) > 0.5).float()
    with torch.no_grad():
        return gen.paint(gen.encode_prompt(["a vase"], [""]), image, depth, keep, torch.Generator().manual_seed(9))


def randomise_adapter(gen, seed: int = 3):
    """Give the adapter seeded random weights (a fresh one is zero in ``B``: no gradient reaches ``A``); returns ``gen``."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in gen.trainable_parameters():
            p.copy_(0.2 * torch.randn(p.shape, generator=g))
    return gen


def paint_loss_and_grads(gen, seed: int = 5) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """A 64 px view painted from seeded random inputs: the view, a loss on it, and the loss's gradients
    with respect to the adapter weights and (last) the input render."""
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(1, 3, 64, 64, generator=g, requires_grad=True)
    depth = torch.rand(1, 1, 64, 64, generator=g)
    keep = (torch.rand(1, 1, 64, 64, generator=g) > 0.5).float()
    painted = gen.paint(gen.encode_prompt(["a vase"], [""]), image, depth, keep, torch.Generator().manual_seed(9))
    loss = (painted * torch.linspace(0, 1, 64)).square().mean()
    return painted.detach(), loss.detach(), list(torch.autograd.grad(loss, gen.trainable_parameters() + [image]))


@pytest.fixture
def random_adapter() -> Callable[..., object]:
    """:func:`randomise_adapter`, as a fixture."""
    return randomise_adapter


@pytest.fixture
def paint_grads() -> Callable[..., tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]]:
    """:func:`paint_loss_and_grads`, as a fixture."""
    return paint_loss_and_grads


@pytest.fixture
def paint_view() -> Callable[..., torch.Tensor]:
    """:func:`paint_random_view`, as a fixture."""
    return paint_random_view


@pytest.fixture
def compile_kwargs(monkeypatch) -> list[dict]:
    """Replace ``torch.compile`` inside `texkit_diffusers.compiled` by a stand-in that returns the function
    unchanged; the list holds the keyword arguments of each call, in order."""
    from texkit_diffusers import compiled

    made: list[dict] = []

    def recording_compile(fn, **kwargs):
        made.append(kwargs)
        return fn

    monkeypatch.setattr(compiled.torch, "compile", recording_compile)
    return made
