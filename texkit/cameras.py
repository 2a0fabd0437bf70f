"""Orbit cameras whose matrices are differentiable functions of their angles.

Convention (the method's, OpenGL): the camera orbits the origin and looks at it, +y is up, +z is
the object's front. For elevation ``e`` and azimuth ``a`` (degrees) the camera sits at

    position = radius * (cos(e) sin(a), -sin(e), cos(e) cos(a)),

so a *negative* elevation puts the camera above the object. The view matrix maps world to
camera space (the camera looks down its -z axis); the projection is the OpenGL perspective
with vertical field of view ``fov``, mapping to clip space with depth in [-1, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from texkit.errors import ConfigError

__all__ = ["Cameras", "CAMERA_PRESETS"]

#: Named camera paths: ``{name: (elevations, azimuths)}`` in degrees (the method's reference paths).
CAMERA_PRESETS: dict[str, tuple[list[float], list[float]]] = {
    "front_short": ([0, -35, -35, -35, -35, -35], [0, 95, 135, 180, -135, -95]),
    "tilted_short": ([0, -25, -25, -15, -25, -25], [0, 95, 135, 180, -135, -95]),
    "ring11": ([-15.0] * 11, [i * 360.0 / 11 - 180.0 for i in range(11)]),
    "front_long": (
        [0, -35, -35, -35, -35, -35, -35, -35, -60, 25, 0, -10],
        [0, 45, 95, 135, 180, -135, -95, -45, 0, 0, 90, -90],
    ),
}

_MAX_ABS_ELEVATION = 89.5  # look-at with +y up degenerates exactly at the poles


@dataclass
class Cameras:
    """A batch of N orbit cameras.

    Attributes:
        azimuth: ``(N,)`` degrees; 0 looks at the front (+z), positive turns towards +x.
        elevation: ``(N,)`` degrees; negative is above the object.
        radius: ``(N,)`` distance from the origin.
        fov: ``(N,)`` vertical field of view in degrees.

    Any of these may ``requires_grad``; `view_matrices`, `projection_matrices`,
    `positions` and `mvp` are differentiable functions of them.
    """

    azimuth: torch.Tensor
    elevation: torch.Tensor
    radius: torch.Tensor
    fov: torch.Tensor

    @classmethod
    def from_angles(
        cls,
        elevation: Sequence[float] | torch.Tensor,
        azimuth: Sequence[float] | torch.Tensor,
        radius: float = 2.5,
        fov: float = 50.0,
        device: Any = None,
        dtype: torch.dtype = torch.float32,
    ) -> "Cameras":
        """Cameras from lists of elevations and azimuths (degrees) with a shared radius and fov."""
        elev = torch.as_tensor(elevation, dtype=dtype, device=device).reshape(-1)
        azim = torch.as_tensor(azimuth, dtype=dtype, device=device).reshape(-1)
        if elev.shape != azim.shape:
            raise ConfigError(f"cameras: {elev.numel()} elevations but {azim.numel()} azimuths; give one of each per view")
        n = elev.numel()
        return cls(
            azimuth=azim,
            elevation=elev,
            radius=torch.full((n,), float(radius), dtype=dtype, device=device),
            fov=torch.full((n,), float(fov), dtype=dtype, device=device),
        )

    @classmethod
    def preset(cls, name: str, radius: float = 2.5, fov: float = 50.0, device: Any = None) -> "Cameras":
        """A named camera path from `CAMERA_PRESETS`."""
        if name not in CAMERA_PRESETS:
            known = ", ".join(sorted(CAMERA_PRESETS))
            raise ConfigError(f"unknown camera preset '{name}' (known: {known}; or give explicit lists)")
        elev, azim = CAMERA_PRESETS[name]
        return cls.from_angles(elev, azim, radius, fov, device)

    @classmethod
    def orbit(cls, n: int, elevation: float = -20.0, radius: float = 2.5, fov: float = 50.0, device: Any = None) -> "Cameras":
        """``n`` cameras evenly spaced in azimuth at one elevation, starting at the front."""
        azim = [i * 360.0 / n for i in range(n)]
        azim = [a - 360.0 if a > 180.0 else a for a in azim]
        return cls.from_angles([elevation] * n, azim, radius, fov, device)

    def __len__(self) -> int:
        return int(self.azimuth.shape[0])

    def __getitem__(self, index: int | slice) -> "Cameras":
        """A sub-batch (keeps the autograd link to the parent tensors)."""
        if isinstance(index, int):
            index = slice(index, index + 1)
        return Cameras(self.azimuth[index], self.elevation[index], self.radius[index], self.fov[index])

    @property
    def device(self) -> torch.device:
        """Device of the parameters."""
        return self.azimuth.device

    def to(self, device: Any) -> "Cameras":
        """A copy on ``device``."""
        return Cameras(self.azimuth.to(device), self.elevation.to(device), self.radius.to(device), self.fov.to(device))

    def detach(self) -> "Cameras":
        """A copy cut from the autograd graph."""
        return Cameras(self.azimuth.detach(), self.elevation.detach(), self.radius.detach(), self.fov.detach())

    def positions(self) -> torch.Tensor:
        """``(N, 3)`` camera centres in world space."""
        elev = torch.deg2rad(self.elevation.clamp(-_MAX_ABS_ELEVATION, _MAX_ABS_ELEVATION))
        azim = torch.deg2rad(self.azimuth)
        return self.radius[:, None] * torch.stack(
            (torch.cos(elev) * torch.sin(azim), -torch.sin(elev), torch.cos(elev) * torch.cos(azim)), dim=-1
        )

    def view_matrices(self) -> torch.Tensor:
        """``(N, 4, 4)`` world -> camera transforms (look-at the origin, +y up, camera looks along -z)."""
        eye = self.positions()
        forward = torch.nn.functional.normalize(-eye, dim=-1)
        up = torch.tensor([0.0, 1.0, 0.0], dtype=eye.dtype, device=eye.device).expand_as(eye)
        right = torch.nn.functional.normalize(torch.cross(forward, up, dim=-1), dim=-1)
        true_up = torch.cross(right, forward, dim=-1)
        rotation = torch.stack((right, true_up, -forward), dim=1)  # rows
        translation = -(rotation @ eye.unsqueeze(-1)).squeeze(-1)
        top = torch.cat((rotation, translation.unsqueeze(-1)), dim=-1)
        bottom = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=eye.dtype, device=eye.device).expand(len(self), 1, 4)
        return torch.cat((top, bottom), dim=1)

    def projection_matrices(self, near: float = 0.1, far: float = 100.0, aspect: float = 1.0) -> torch.Tensor:
        """``(N, 4, 4)`` OpenGL perspective projections (camera -> clip space)."""
        focal = 1.0 / torch.tan(torch.deg2rad(self.fov) / 2.0)
        zeros = torch.zeros_like(focal)
        ones = torch.ones_like(focal)
        a = (far + near) / (near - far)
        b = 2.0 * far * near / (near - far)
        rows = [
            torch.stack((focal / aspect, zeros, zeros, zeros), -1),
            torch.stack((zeros, focal, zeros, zeros), -1),
            torch.stack((zeros, zeros, a * ones, b * ones), -1),
            torch.stack((zeros, zeros, -ones, zeros), -1),
        ]
        return torch.stack(rows, dim=1)

    def mvp(self, near: float = 0.1, far: float = 100.0) -> torch.Tensor:
        """``(N, 4, 4)`` projection @ view."""
        return self.projection_matrices(near, far) @ self.view_matrices()

    def view_names(self) -> list[str]:
        """The method's per-view prompt suffix: front / side / back / top / bottom."""
        names = []
        for az, el in zip(self.azimuth.tolist(), self.elevation.tolist()):
            az = (az + 180.0) % 360.0 - 180.0
            if el <= -60.0:
                names.append("top")
            elif el >= 60.0:
                names.append("bottom")
            elif abs(az) < 30.0:
                names.append("front")
            elif abs(az) < 90.0:
                names.append("side")
            else:
                names.append("back")
        return names
