"""CPU speed of the texture-space geometry rewards (forward + backward) on the rabbit at 256 and 512 px.

Run: ``.venv/bin/python -m pytest benchmarks/test_geometry_rewards_benchmark.py --benchmark-only``.
The trainer calls a reward every step: each should take well under 100 ms on 2 CPU cores.
Timed on one intra-op thread: on a busy 2-core machine OpenMP threads spin against each other and
make multi-threaded timings of these small kernels meaningless.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import texkit

ASSETS = Path(__file__).resolve().parents[2] / "shared" / "assets"
REWARDS = ["symmetry", "curvature_color", "feature_emphasis", "curvature_alignment"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def rabbit():
    if not (ASSETS / "rabbit.obj").exists():
        pytest.skip("shared assets not found")
    mesh = texkit.Mesh.load(ASSETS / "rabbit.obj")
    return mesh, texkit.GeometryCache(mesh)


@pytest.mark.parametrize("size", [256, 512])
@pytest.mark.parametrize("name", REWARDS)
def test_geometry_reward_forward_backward(benchmark, rabbit, name, size):
    mesh, cache = rabbit
    reward = texkit.get_registry().make_reward(name)
    reward.prepare(mesh, cache)
    image = torch.rand(size, size, 3, generator=torch.Generator().manual_seed(0), requires_grad=True)
    ctx = texkit.RewardContext(mesh=mesh, texture=texkit.Texture(image), geometry=cache)
    reward(ctx)  # texel maps for this size

    def step() -> None:
        image.grad = None
        reward(ctx).value.backward()

    benchmark(step)
    assert image.grad is not None and torch.isfinite(image.grad).all()
