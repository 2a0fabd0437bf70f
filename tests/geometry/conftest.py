"""Shared pieces of the geometry cross-checks against ../shared/assets."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial import cKDTree

from texkit.geometry.mesh import Mesh

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


@pytest.fixture
def record_crosscheck() -> Callable[[str, dict], None]:
    """``record(name, values)``: store figures under ``name`` in benchmarks/results/geometry_crosscheck.json."""

    def record(name: str, values: dict) -> None:
        path = RESULTS / "geometry_crosscheck.json"
        data = json.loads(path.read_text()) if path.exists() else {}
        data[name] = values
        RESULTS.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")

    return record


@dataclass
class RabbitPairs:
    """rabbit.obj and its reference symmetric UV pairs.

    Attributes:
        mesh: the loaded rabbit.
        rows: ``(P, 4)`` the file's rows ``u_i v_i u_j v_j``.
        first, second: ``(P,)`` the ``vt`` index of each pair's first and second point.
        uv_to_vertex: ``(T,)`` the vertex index of each ``vt`` entry.
    """

    mesh: Mesh
    rows: np.ndarray
    first: np.ndarray
    second: np.ndarray
    uv_to_vertex: np.ndarray


@pytest.fixture
def rabbit_pairs(assets: Path) -> RabbitPairs:
    """The rabbit with its reference pairs looked up as ``vt`` indices (each row is exactly a ``vt`` entry)."""
    mesh = Mesh.load(assets / "rabbit.obj")
    rows = np.loadtxt(assets / "rabbit_symmetric_uv_pairs.txt", comments="#")
    uvs = mesh.uvs.double().numpy()
    uv_to_vertex = np.zeros(len(uvs), dtype=int)
    uv_to_vertex[mesh.uv_faces.numpy().reshape(-1)] = mesh.faces.numpy().reshape(-1)
    tree = cKDTree(uvs)
    return RabbitPairs(mesh, rows, tree.query(rows[:, :2])[1], tree.query(rows[:, 2:])[1], uv_to_vertex)
