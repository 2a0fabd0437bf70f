"""CPU benchmarks of the pure-PyTorch renderer and of the back-projection.

Run with ``make bench`` or
``.venv/bin/python -m pytest benchmarks/test_render_benchmark.py --benchmark-only``.
The workload is the one METHOD.md asks about: the cow (5,856 faces), 6 views of the
``front_short`` painting path, 256 px renders, a 1024 px texture.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import texkit
from texkit import Cameras, Mesh
from texkit.back_projection import TextureState, back_project

ASSETS = Path(__file__).resolve().parents[2] / "shared" / "assets"
FRONT_SHORT = ([0.0, -35, -35, -35, -35, -35], [0.0, 95, 135, 180, -135, -95])


@pytest.fixture(scope="module")
def scene():
    if not (ASSETS / "cow.obj").exists():
        pytest.skip(f"shared assets not found at {ASSETS}")
    mesh = Mesh.load(ASSETS / "cow.obj")
    renderer = texkit.get_registry().make_renderer("torch")
    texture = torch.rand(1024, 1024, 3, generator=torch.Generator().manual_seed(0))
    return mesh, renderer, texture


@pytest.mark.parametrize("resolution", [256, 512])
def test_render_forward(benchmark, scene, resolution):
    mesh, renderer, texture = scene
    cams = Cameras.from_angles(*FRONT_SHORT)
    with torch.no_grad():
        out = benchmark(renderer.render, mesh, texture, cams, resolution)
    assert out.rgb.shape == (6, resolution, resolution, 3) and out.alpha.sum() > 0


def test_render_forward_backward_256(benchmark, scene):
    """Forward + backward to the texture and the camera angles (the reward path)."""
    mesh, renderer, texture = scene
    weights = torch.rand(6, 256, 256, 3, generator=torch.Generator().manual_seed(1))

    def step():
        tex = texture.clone().requires_grad_(True)
        elev = torch.tensor(FRONT_SHORT[0], requires_grad=True)
        cams = Cameras.from_angles(elev, torch.tensor(FRONT_SHORT[1]))
        (renderer.render(mesh, tex, cams, 256).rgb * weights).sum().backward()
        return tex.grad, elev.grad

    tex_grad, elev_grad = benchmark(step)
    assert tex_grad.abs().sum() > 0 and elev_grad.abs().sum() > 0


def test_back_project_256_views_into_1024_texture(benchmark, scene):
    mesh, renderer, texture = scene
    cams = Cameras.from_angles(*FRONT_SHORT)
    with torch.no_grad():
        render = renderer.render(mesh, texture, cams, 256, antialias=False)

    def paint():
        state = TextureState.empty(1024).accumulate(back_project(render, render.rgb, 1024))
        return state.texture(min_level=128)

    result = benchmark(paint)
    assert result.coverage.sum() > 0
