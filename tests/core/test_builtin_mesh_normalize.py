"""Built-in meshes honour `mesh.normalize` like mesh files (they used to fail with 'file not found')."""

from __future__ import annotations

import pytest
import torch

from texkit.geometry.primitives import load_mesh


@pytest.mark.parametrize("name", ["cube", "sphere", "demo"])
def test_builtin_mesh_extent_normalisation(name):
    mesh = load_mesh(name, "extent")
    side = (mesh.vertices.max(0).values - mesh.vertices.min(0).values).max()
    assert torch.isclose(side, torch.tensor(1.6), atol=1e-5)


def test_builtin_mesh_unit_sphere_and_none():
    unit = load_mesh("cube")
    assert torch.isclose(unit.vertices.norm(dim=1).max(), torch.tensor(1.0), atol=1e-5)
    raw = load_mesh("cube", "none")
    side = (raw.vertices.max(0).values - raw.vertices.min(0).values).max()
    assert torch.isclose(side, torch.tensor(1.0), atol=1e-5)  # cube(size=1.0) as built
