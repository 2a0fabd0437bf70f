"""Long geometry work on a ~30k-face mesh: the intrinsic symmetry map and the xatlas unwrap (cold and cached).

The shared test meshes have at most 6,598 faces, so the benchmark mesh is made from rabbit.obj,
deterministically: midpoint-subdivided once (each face into 4, 26,392 faces), then the largest
faces split at their centroid (each into 3, conforming: no T-junctions) until ``--faces`` is
reached. Timed, in this process, on the CPU:

* ``find_intrinsic_symmetry`` (default: refinement on 4,000 farthest-point samples, then the map
  of every vertex); with ``--baseline`` also the refinement on every vertex (no sampling, the
  same nearest-neighbour search), and how far apart the two maps land (in median edge lengths);
* with ``--before``, the map as texkit computed it before (k-d tree nearest neighbours, refinement
  on every vertex), and how far its map lands from the sampled one;
* ``mirror_pairs(method="intrinsic")`` from an empty geometry cache, then again from the cache;
* the xatlas unwrap of the mesh without UVs (``Mesh.from_arrays(uvs=None)``) from an empty
  ``TEXKIT_CACHE_DIR``, then again from the cache, for each size in ``--unwrap-faces``.

    python benchmarks/bench_intrinsic_symmetry.py --repeats 3 --baseline --before --out benchmarks/results/intrinsic_symmetry_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ASSETS = Path(__file__).resolve().parents[2] / "shared" / "assets"


def centroid_split(verts: np.ndarray, faces: np.ndarray, target_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """Split the largest faces at their centroid (1 face -> 3) until the mesh has ``target_faces`` faces.

    Args:
        verts: ``(V, 3)`` positions.
        faces: ``(F, 3)`` vertex indices.
        target_faces: wanted face count; ``F`` plus an even number (each split adds 2 faces).

    Returns:
        ``(verts (V + n, 3), faces (F + 2 n, 3))`` with ``n = (target_faces - F) // 2``.
    """
    count = max(0, (target_faces - len(faces)) // 2)
    corners = verts[faces]
    area = np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
    split = np.sort(np.argsort(-area, kind="stable")[:count])
    centre = len(verts) + np.arange(count)
    a, b, c = faces[split].T
    new_faces = np.concatenate(
        [
            np.delete(faces, split, axis=0),
            np.stack([a, b, centre], 1),
            np.stack([b, c, centre], 1),
            np.stack([c, a, centre], 1),
        ]
    )
    return np.concatenate([verts, corners[split].mean(axis=1)]), new_faces


def benchmark_mesh(faces: int) -> tuple[np.ndarray, np.ndarray, str]:
    """The rabbit, midpoint-subdivided once, then centroid-split to ``faces`` faces; and its description."""
    import trimesh

    from texkit.geometry.mesh import Mesh

    rabbit = Mesh.load(ASSETS / "rabbit.obj", normalize="none")
    verts, tris = trimesh.remesh.subdivide(rabbit.vertices.double().numpy(), rabbit.faces.numpy())
    subdivided = len(tris)
    verts, tris = centroid_split(verts, tris, faces)
    why = f"rabbit.obj ({rabbit.num_faces:,} faces) midpoint-subdivided once ({subdivided:,} faces), then its {(len(tris) - subdivided) // 2:,} largest faces split at their centroid"
    return verts, tris, why


def time_intrinsic(mesh, samples: int | None) -> tuple[dict, np.ndarray]:
    """Seconds of `find_intrinsic_symmetry` (plane search included); ``samples=None``: the default."""
    from texkit.geometry.intrinsic_symmetry import find_intrinsic_symmetry

    kwargs = {} if samples is None else {"samples": samples}
    begin = time.perf_counter()
    symmetry = find_intrinsic_symmetry(mesh, verbose=True, **kwargs)
    seconds = time.perf_counter() - begin
    n = mesh.num_vertices
    kept = (symmetry.roundtrip < 0.03) & (symmetry.spectral_error <= 3.0)
    return {
        "seconds": round(seconds, 2),
        "samples": min(samples or 4000, n),
        "involution_fraction": round(float((symmetry.target[symmetry.target] == np.arange(n)).mean()), 4),
        "confident_pair_fraction": round(float(kept.mean()), 4),
    }, symmetry.target


def time_before(mesh) -> tuple[dict, np.ndarray]:
    """Seconds of the map as texkit computed it before sampling (commit 90620c2): ZoomOut on every
    vertex, nearest neighbours from a k-d tree (scipy ``cKDTree``) in the spectral embedding."""
    from scipy.spatial import cKDTree

    from texkit.geometry.intrinsic_symmetry import _basis_sizes, _nearest_reflection, laplace_beltrami_basis
    from texkit.geometry.symmetry import find_symmetry_plane

    begin = time.perf_counter()
    verts, faces = mesh.vertices.double().numpy(), mesh.faces.numpy()
    plane = find_symmetry_plane(mesh)
    _, phi, mass = laplace_beltrami_basis(verts, faces, 61)
    phi = phi[:, 1:]
    target = cKDTree(verts).query(plane.reflect(verts))[1]
    for k in _basis_sizes(6, phi.shape[1], 2):
        basis_k = phi[:, :k]
        fmap = _nearest_reflection(basis_k.T @ (mass @ basis_k[target]))
        _, target = cKDTree(basis_k).query(basis_k @ fmap)
    return {"seconds": round(time.perf_counter() - begin, 2), "samples": len(verts)}, target


def time_mirror_pairs(mesh) -> dict:
    """Seconds of ``mirror_pairs(method="intrinsic")`` from an empty geometry cache and from the filled one."""
    from texkit.geometry.cache import GeometryCache
    from texkit.geometry.precompute import mirror_pairs

    with tempfile.TemporaryDirectory() as root:
        begin = time.perf_counter()
        pairs = mirror_pairs(GeometryCache(mesh, root), method="intrinsic")
        cold = time.perf_counter() - begin
        begin = time.perf_counter()
        mirror_pairs(GeometryCache(mesh, root), method="intrinsic")  # a later command would do this
        cached = time.perf_counter() - begin
    return {"cold_seconds": round(cold, 2), "cached_seconds": round(cached, 4), "pairs": int(len(pairs["uv_a"]))}


def time_unwrap(faces: int) -> dict:
    """Seconds of loading the benchmark mesh without UVs (xatlas) with an empty cache, then cached."""
    from texkit.geometry.mesh import Mesh

    verts, tris, why = benchmark_mesh(faces)
    from unittest import mock

    with tempfile.TemporaryDirectory() as root, mock.patch.dict(os.environ, {"TEXKIT_CACHE_DIR": root}):
        begin = time.perf_counter()
        first = Mesh.from_arrays(verts, tris)
        cold = time.perf_counter() - begin
        begin = time.perf_counter()
        again = Mesh.from_arrays(verts, tris)  # a later command would do this
        cached = time.perf_counter() - begin
    assert bool((first.uvs == again.uvs).all()), "cached UVs differ"
    return {
        "mesh": why,
        "faces": len(tris),
        "vertices": len(verts),
        "cold_seconds": round(cold, 2),
        "cached_seconds": round(cached, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faces", type=int, default=30_000, help="faces of the intrinsic-symmetry mesh")
    parser.add_argument(
        "--unwrap-faces", type=int, nargs="*", default=[30_000, 52_000], help="mesh sizes for the unwrap"
    )
    parser.add_argument("--baseline", action="store_true", help="also refine on every vertex (no sampling)")
    parser.add_argument(
        "--before", action="store_true", help="also time the map as computed before sampling (k-d tree, every vertex)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs of the default map (the median is reported)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()

    from texkit.geometry.mesh import Mesh

    verts, tris, why = benchmark_mesh(args.faces)
    uvs = np.zeros((len(verts), 2))  # UVs are not used by the map; skip the unwrap here
    mesh = Mesh.from_arrays(verts, tris, uvs, tris, name="rabbit_30k")
    load = os.getloadavg()[0]
    result: dict = {
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "cpu_count": os.cpu_count(),
        "cores_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_average_1min_before": round(load, 2),
        "threads": "numpy/scipy defaults (BLAS may use both cores); SuperLU and ARPACK run on one",
        "mesh": {"name": why, "faces": mesh.num_faces, "vertices": mesh.num_vertices},
    }
    runs = []
    for _ in range(args.repeats):
        run, target = time_intrinsic(mesh, None)
        runs.append(run)
        print(json.dumps(run), flush=True)
    result["intrinsic_symmetry"] = {
        **runs[-1],
        "seconds": statistics.median(r["seconds"] for r in runs),
        "seconds_each_run": [r["seconds"] for r in runs],
    }
    v = mesh.vertices.double().numpy()
    edge = float(np.median(np.linalg.norm(v[tris[:, 0]] - v[tris[:, 1]], axis=1)))

    def agreement(other: np.ndarray) -> dict:
        apart = np.linalg.norm(v[target] - v[other], axis=1) / edge
        return {
            "median_edges_apart": round(float(np.median(apart)), 3),
            "fraction_within_2_edges": round(float((apart <= 2).mean()), 4),
        }

    if args.baseline:
        result["intrinsic_symmetry_every_vertex"], full = time_intrinsic(mesh, mesh.num_vertices)
        result["sampled_vs_every_vertex"] = agreement(full)
        print(json.dumps(result["intrinsic_symmetry_every_vertex"]), flush=True)
    if args.before:
        result["intrinsic_symmetry_before"], before = time_before(mesh)
        result["sampled_vs_before"] = agreement(before)
        print(json.dumps(result["intrinsic_symmetry_before"]), flush=True)
    result["mirror_pairs_intrinsic"] = time_mirror_pairs(mesh)
    print(json.dumps(result["mirror_pairs_intrinsic"]), flush=True)
    result["unwrap"] = [time_unwrap(faces) for faces in args.unwrap_faces]
    print(json.dumps(result["unwrap"]), flush=True)
    result["load_average_1min_after"] = round(os.getloadavg()[0], 2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
