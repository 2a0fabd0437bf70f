"""Orbit camera maths as known answers: positions, the look-at view matrix, the OpenGL projection,
evenly spaced orbits, sub-batches and the per-view prompt names at their thresholds."""

from __future__ import annotations

import math

import pytest
import torch

from texkit.cameras import Cameras


def _homogeneous(points: torch.Tensor) -> torch.Tensor:
    return torch.cat((points, torch.ones(points.shape[0], 1)), dim=-1)


def test_defaults_of_angles_presets_and_orbits():
    for cams in (Cameras.from_angles([0.0], [0.0]), Cameras.preset("front_short"), Cameras.orbit(3)):
        assert torch.all(cams.radius == 2.5) and torch.all(cams.fov == 50.0)
    assert Cameras.orbit(4).elevation.tolist() == [-20.0] * 4


def test_positions_follow_the_documented_convention():
    cams = Cameras.from_angles([0.0, -30.0, 0.0], [0.0, 0.0, 90.0], radius=2.0)
    s, c = math.sin(math.radians(30)), math.cos(math.radians(30))
    want = torch.tensor([[0.0, 0.0, 2.0], [0.0, 2.0 * s, 2.0 * c], [2.0, 0.0, 0.0]])
    torch.testing.assert_close(cams.positions(), want, atol=1e-6, rtol=0)
    # elevation is clamped short of the poles, where look-at with +y up degenerates
    torch.testing.assert_close(Cameras.from_angles([-90.0], [0.0]).positions(), Cameras.from_angles([-89.5], [0.0]).positions())
    torch.testing.assert_close(Cameras.from_angles([95.0], [0.0]).positions(), Cameras.from_angles([89.5], [0.0]).positions())


def test_view_matrix_is_a_rigid_look_at_with_the_camera_at_the_origin():
    cams = Cameras.from_angles([-35.0, 10.0, 0.0], [95.0, -135.0, 180.0], radius=3.0)
    view = cams.view_matrices()
    assert view.shape == (3, 4, 4)
    torch.testing.assert_close(view[:, 3], torch.tensor([[0.0, 0.0, 0.0, 1.0]] * 3))
    rotation = view[:, :3, :3]
    torch.testing.assert_close(rotation @ rotation.transpose(1, 2), torch.eye(3).expand(3, 3, 3), atol=1e-6, rtol=0)
    torch.testing.assert_close(torch.linalg.det(rotation), torch.ones(3))
    for i in range(3):
        eye, origin = cams.positions()[i], torch.zeros(3)
        in_camera = view[i] @ _homogeneous(torch.stack((eye, origin))).T
        torch.testing.assert_close(in_camera[:3, 0], torch.zeros(3), atol=1e-5, rtol=0)  # the eye maps to the origin
        torch.testing.assert_close(in_camera[:3, 1], torch.tensor([0.0, 0.0, -3.0]), atol=1e-5, rtol=0)  # looking down -z
        up = view[i, :3, :3] @ torch.tensor([0.0, 1.0, 0.0])
        assert up[1] > 0  # world +y stays up on the image
    right = Cameras.from_angles([0.0], [0.0]).view_matrices()[0, :3, :3] @ torch.tensor([1.0, 0.0, 0.0])
    torch.testing.assert_close(right, torch.tensor([1.0, 0.0, 0.0]), atol=1e-6, rtol=0)  # front view: +x to the right


def test_projection_maps_near_and_far_planes_to_ndc_minus_one_and_one():
    cams = Cameras.from_angles([0.0, 0.0], [0.0, 0.0], fov=60.0)
    proj = cams.projection_matrices()  # defaults near 0.1, far 100
    for depth, ndc in ((0.1, -1.0), (100.0, 1.0)):
        clip = proj[0] @ torch.tensor([0.0, 0.0, -depth, 1.0], dtype=torch.float64).float()
        assert clip[3].item() == pytest.approx(depth)  # w = distance in front of the camera
        assert (clip[2] / clip[3]).item() == pytest.approx(ndc, abs=1e-4)
    focal = 1.0 / math.tan(math.radians(30.0))
    assert proj[0, 1, 1].item() == pytest.approx(focal) and proj[0, 0, 0].item() == pytest.approx(focal)  # aspect 1
    wide = cams.projection_matrices(near=1.0, far=3.0, aspect=2.0)[1]
    assert wide[0, 0].item() == pytest.approx(focal / 2.0) and wide[1, 1].item() == pytest.approx(focal)
    torch.testing.assert_close(wide[2:], torch.tensor([[0.0, 0.0, -2.0, -3.0], [0.0, 0.0, -1.0, 0.0]]))
    torch.testing.assert_close(cams.mvp(), proj @ cams.view_matrices())
    torch.testing.assert_close(cams.mvp(near=1.0, far=3.0), cams.projection_matrices(1.0, 3.0) @ cams.view_matrices())


def test_orbit_spaces_azimuths_evenly_in_minus_180_to_180():
    assert Cameras.orbit(4).azimuth.tolist() == [0.0, 90.0, 180.0, -90.0]
    assert Cameras.orbit(3, elevation=-10.0).azimuth.tolist() == pytest.approx([0.0, 120.0, -120.0])
    assert Cameras.orbit(3, elevation=-10.0).elevation.tolist() == [-10.0] * 3
    assert len(Cameras.orbit(5)) == 5


def test_indexing_keeps_one_camera_or_a_slice():
    cams = Cameras.from_angles([0.0, -10.0, -20.0], [0.0, 45.0, 90.0])
    one = cams[1]
    assert len(one) == 1 and one.azimuth.tolist() == [45.0] and one.elevation.tolist() == [-10.0]
    assert cams[2].azimuth.tolist() == [90.0]
    assert cams[0:2].azimuth.tolist() == [0.0, 45.0]
    assert cams.device == torch.device("cpu") and cams.to("cpu").azimuth.tolist() == cams.azimuth.tolist()


@pytest.mark.parametrize(
    "elevation, azimuth, name",
    [
        (-60.0, 0.0, "top"),
        (-59.9, 0.0, "front"),
        (60.0, 0.0, "bottom"),
        (59.9, 0.0, "front"),
        (0.0, 29.5, "front"),
        (0.0, -29.5, "front"),
        (0.0, 30.0, "side"),
        (0.0, -30.0, "side"),
        (0.0, 89.5, "side"),
        (0.0, 90.0, "back"),
        (0.0, 180.0, "back"),
        (0.0, 359.5, "front"),
        (0.0, 690.5, "front"),
        (0.0, -280.0, "side"),
    ],
)
def test_view_names_at_their_thresholds(elevation, azimuth, name):
    assert Cameras.from_angles([elevation], [azimuth]).view_names() == [name]


def test_orbit_azimuths_just_past_180_wrap_to_negative():
    azimuth = Cameras.orbit(359).azimuth  # step 360/359: camera 180 sits at 180.5 degrees
    assert float(azimuth.max()) <= 180.0 and float(azimuth.min()) > -180.0
    assert float(azimuth[180]) == pytest.approx(180.0 * 360.0 / 359.0 - 360.0)


def test_cameras_never_roll_the_horizon_stays_level():
    """Every camera's x axis (its right) is horizontal and its y axis leans towards world +y,
    from every azimuth and elevation below the pole clamp."""
    elevation = torch.tensor([-60.0, -20.0, 0.0, 30.0, 75.0]).repeat_interleave(8)
    azimuth = torch.tensor([0.0, 45.0, 90.0, 135.0, 180.0, -135.0, -90.0, -45.0]).repeat(5)
    view = Cameras.from_angles(elevation, azimuth).view_matrices()
    right, up = view[:, 0, :3], view[:, 1, :3]
    torch.testing.assert_close(right[:, 1], torch.zeros(40), atol=1e-6, rtol=0)
    assert bool((up[:, 1] > 0).all())
    torch.testing.assert_close(right.norm(dim=-1), torch.ones(40))
