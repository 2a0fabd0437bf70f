"""Fixtures of the geometry-reward tests: small meshes built in code, in-memory geometry caches."""

from __future__ import annotations

import pytest
import torch

import texkit
from texkit.geometry.primitives import cylinder, demo_mesh, uv_sphere


@pytest.fixture(scope="session")
def gourd() -> texkit.Mesh:
    """The built-in demo gourd (mirror-symmetric, convex and concave parts), coarse: 578 vertices."""
    return demo_mesh(32, 16)


@pytest.fixture(scope="session")
def gourd_cache(gourd) -> texkit.GeometryCache:
    """An in-memory geometry cache of :func:`gourd`, shared by the tests (computed once)."""
    return texkit.GeometryCache(gourd, root=False)


@pytest.fixture(scope="session")
def ribbed() -> texkit.Mesh:
    """A sphere with 6 deep ribs around its axis: convex ridges and concave valleys (mean curvature
    of both signs, unlike the gourd whose mean curvature is positive everywhere)."""
    sphere = uv_sphere(1.0, 96, 48)
    v = sphere.vertices
    lon = torch.atan2(-v[:, 0], -v[:, 2])
    radial = 1.0 + 0.2 * torch.cos(6 * lon) * (1 - v[:, 1] ** 2)
    return texkit.Mesh.from_arrays(v * radial[:, None], sphere.faces, sphere.uvs, sphere.uv_faces, name="ribbed", normalize="none")


@pytest.fixture(scope="session")
def ribbed_cache(ribbed) -> texkit.GeometryCache:
    """An in-memory geometry cache of :func:`ribbed`."""
    return texkit.GeometryCache(ribbed, root=False)


@pytest.fixture(scope="session")
def tube() -> texkit.Mesh:
    """An open cylinder along y (minimum-curvature direction = the axis = the UV v direction)."""
    return cylinder(0.5, 2.0, 48, 24)


@pytest.fixture(scope="session")
def top_band_gourd(gourd) -> texkit.Mesh:
    """The gourd with its UV atlas squeezed into v in [0.55, 1]: texture rows 0 .. 0.45 H only."""
    uvs = gourd.uvs.clone()
    uvs[:, 1] = 0.55 + 0.45 * uvs[:, 1]
    return texkit.Mesh(gourd.vertices, gourd.faces, uvs, gourd.uv_faces, gourd.normals, "top_band_gourd")


def context(mesh: texkit.Mesh, cache: texkit.GeometryCache, image: torch.Tensor, coverage: torch.Tensor | None = None, **kw) -> texkit.RewardContext:
    """A reward context for a texture image (coverage 1 unless given)."""
    return texkit.RewardContext(mesh=mesh, texture=texkit.Texture(image, coverage), geometry=cache, **kw)


@pytest.fixture(scope="session")
def make_context():
    """The :func:`context` helper as a fixture (test modules are imported by path)."""
    return context
